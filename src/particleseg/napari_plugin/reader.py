"""napari reader for particleseg results: the labels, the scan they came from, the particle table.

A particleseg result is a folder written by ``particleseg predict`` (``summary.json`` beside
``instances.ome.zarr`` or ``instances.zarr``), or the ``instances.ome.zarr`` inside it. It opens as

- a Labels layer ``instances``: the OME-Zarr pyramid as a multiscale layer (zarr arrays, read
  lazily as napari draws them), else ``instances.zarr``; ``scale`` is the voxel size; the rows
  of ``particles.csv`` are the layer's features (one per id: ``index`` is the label id), so
  napari shows a particle's size and shape where the pointer is;
- an Image layer with the scan (when ``summary.json``'s input still exists), read lazily
  through dask, with contrast limits from a few planes (never the whole scan).

:func:`read_result` is plain Python (layer data tuples), tested without a viewer.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

LayerData = tuple[Any, dict[str, Any], str]
#: Z planes (evenly spaced) whose voxels set the scan layer's contrast limits.
_CONTRAST_PLANES = 8


def result_folder(path: Path) -> Path | None:
    """The result folder ``path`` is or lies in, None when it is not a particleseg result."""
    path = Path(path)
    if path.name == "instances.ome.zarr":
        path = path.parent
    has_labels = (path / "instances.ome.zarr").is_dir() or (path / "instances.zarr").is_dir()
    return path if (path / "summary.json").is_file() and has_labels else None


def get_reader(path: str | list[str]) -> Callable[[str], list[LayerData]] | None:
    """npe2 reader contribution: a reader when ``path`` is a particleseg result, else None."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    return read_result if result_folder(Path(path)) is not None else None


def read_particles_table(path: Path) -> dict[str, np.ndarray]:
    """``particles.csv`` as columns (numbers as float64, text kept), with ``index`` = the id.

    A background row (index 0) is added first, as napari's Labels features expect.
    """
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    table: dict[str, np.ndarray] = {}
    for name in rows[0]:
        values = [row[name] for row in rows]
        try:
            column = np.array([float(v) if v != "" else np.nan for v in values])
            column = np.concatenate([[np.nan], column])
        except ValueError:
            column = np.array(["", *values], dtype=object)
        table[name] = column
    ids = table.get("id")
    if ids is None:
        return {}
    table["index"] = np.concatenate([[0], ids[1:]]).astype(np.int64)
    return table


def _labels_levels(folder: Path) -> list[Any]:
    ome = folder / "instances.ome.zarr"
    if ome.is_dir():
        group = zarr.open_group(str(ome), mode="r")
        datasets = group.attrs["multiscales"][0]["datasets"]
        return [group[d["path"]] for d in datasets]
    return [zarr.open_array(str(folder / "instances.zarr"), mode="r")]


def _scan_layer(summary: dict, scale: tuple[float, ...] | None) -> LayerData | None:
    import dask.array as da

    from particleseg.io.volumes import read_volume

    source = summary.get("input")
    if not source or not Path(source).exists():
        return None
    try:
        volume = read_volume(source)
    except ValueError:
        return None
    if tuple(volume.shape) != tuple(summary.get("shape") or volume.shape):
        return None  # the file at that path changed since: not this result's scan
    # a few whole planes: a strided sample of a chunked (compressed) scan would decode all of it
    planes = np.unique(np.linspace(0, volume.shape[0] - 1, _CONTRAST_PLANES).astype(int))
    sample = np.stack([np.asarray(volume[int(z)], dtype=np.float64) for z in planes])
    low, high = np.percentile(sample, [0.5, 99.5]) if sample.size else (0.0, 1.0)
    chunks = getattr(volume, "chunks", None) or (64, 256, 256)
    meta = {
        "name": summary.get("name") or Path(source).name,
        "contrast_limits": [float(low), float(max(high, low + 1e-6))],
        "metadata": {"source": str(source)},
    }
    if scale is not None:
        meta["scale"] = scale
    return da.from_array(volume, chunks=chunks), meta, "image"


def read_result(path: str) -> list[LayerData]:
    """The layers of a particleseg result folder (or its ``instances.ome.zarr``).

    Returns:
        napari layer data tuples: the scan (when its file is there), then the instances.

    Raises:
        ValueError: naming ``path`` when it is not a particleseg result.
    """
    folder = result_folder(Path(path))
    if folder is None:
        raise ValueError(
            f"{path}: not a particleseg result (expected summary.json beside instances.ome.zarr "
            "or instances.zarr)"
        )
    summary = json.loads((folder / "summary.json").read_text())
    spacing = summary.get("spacing")
    scale = tuple(float(s) for s in spacing) if spacing else None
    levels = _labels_levels(folder)
    meta: dict[str, Any] = {
        "name": "instances",
        "multiscale": len(levels) > 1,
        "metadata": {"folder": str(folder), "unit": summary.get("unit")},
    }
    if scale is not None:
        meta["scale"] = scale
    table = folder / "particles.csv"
    if table.is_file():
        features = read_particles_table(table)
        if features:
            meta["features"] = features
    layers: list[LayerData] = []
    scan = _scan_layer(summary, scale)
    if scan is not None:
        layers.append(scan)
    layers.append((levels if len(levels) > 1 else levels[0], meta, "labels"))
    return layers
