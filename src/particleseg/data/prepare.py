"""Prepare a labelled sample once for training: normalize, particle-size resize, border-core.

Order follows the method: the image is normalized (per scan, or z-scored with the global
training statistics: :mod:`particleseg.transforms.normalization`, fitted on the scan as predict
does), resized by ``zoom = target_particle_size / particle_size_px`` (per axis; linear), the
instance labels are resized so no particle vanishes (nearest + restore), and the border-core
target is computed from the *resized* instances so the border is ``border_thickness`` voxels
wide in the network's space. A sample with a phase map also keeps it, resized like the labels,
and the phases of the voxels the normalization sampled, so that appearance randomization can
normalize what it renders the same way.

Resizing the whole sample once is equivalent to resizing every patch (both sample the same
continuous zoom) and is paid once instead of per iteration.

Prepared arrays are cached as ``.npy`` files under a key of everything they depend on; training
workers memory-map them, so the page cache is shared and a patch read costs a few milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import fastremap
import numpy as np

from particleseg.io import SampleEntry, check_image, check_labels, read_sample, read_volume
from particleseg.io.atomic import atomic_path, write_json_atomic
from particleseg.nearest_index import nearest_source_index
from particleseg.targets import instance_to_border_core
from particleseg.transforms.normalization import (
    Normalization,
    normalization_for_scan,
    resolve_config,
    sample_voxels,
)
from particleseg.transforms.resize import (
    resize_image,
    resize_labels,
    resized_shape,
    zoom_factors,
)

CACHE_VERSION = 2
FG_COORDS_MAX = 20_000  # foreground locations stored per sample for foreground oversampling


@dataclass(frozen=True)
class PreparedSample:
    """A sample in the network's space.

    Attributes:
        name: Sample name.
        image: float32 (Z', Y', X') z-scored, resized image (usually a read-only memmap).
        instances: uint32 (Z', Y', X') resized instance labels, ids consecutive from 1.
        border_core: uint8 (Z', Y', X') 0 background, 1 core, 2 border.
        fg_coords: int32 (K, 3) up to ``FG_COORDS_MAX`` random foreground voxel positions.
        zoom: Zoom factor per axis from the original to this space.
        phases: uint8 (Z', Y', X') resized phase map, or None when the sample has none.
        phase_sample: uint8 (n,) phases of the voxels the normalization sampled (same positions
            as :func:`~particleseg.transforms.normalization.sample_voxels` on the scan), or None.
        folder: Cache folder the arrays are memory-mapped from, or None when in memory. A cached
            sample pickles as its folder (cheap to send to DataLoader workers).
    """

    name: str
    image: np.ndarray
    instances: np.ndarray
    border_core: np.ndarray
    fg_coords: np.ndarray
    zoom: tuple[float, float, float]
    phases: np.ndarray | None = None
    phase_sample: np.ndarray | None = None
    folder: Path | None = None

    def __reduce__(self):
        if self.folder is None:
            return super().__reduce__()
        return (_load, (self.folder, self.name, self.zoom))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape (Z', Y', X')."""
        return tuple(self.image.shape)  # type: ignore[return-value]


def prepare_arrays(
    image: np.ndarray,
    labels: np.ndarray,
    normalize: Normalization,
    zoom: tuple[float, float, float],
    border_thickness: int,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Normalize, resize and convert one sample (in memory).

    Args:
        image: (Z, Y, X) image, any real dtype (integers are cast, never rescaled to [0, 1]).
        labels: (Z, Y, X) instance labels, non-negative integers.
        normalize: The scan's intensity normalization.
        zoom: Zoom per axis (see :func:`particleseg.transforms.resize.zoom_factors`).
        border_thickness: Border width in voxels of the resized space.
        seed: Seed for the subsample of foreground positions.

    Returns:
        ``(image float32, instances uint32, border_core uint8, fg_coords int32 (K, 3))``.
    """
    out_shape = resized_shape(image.shape, zoom)
    img = resize_image(normalize(np.asarray(image)), out_shape)
    inst = resize_labels(np.asarray(labels), out_shape)
    inst, _ = fastremap.renumber(inst, in_place=True)
    inst = inst.astype(np.uint32, copy=False)
    bc = instance_to_border_core(inst, border_thickness=border_thickness)
    fg = np.flatnonzero(bc.ravel())
    if len(fg) > FG_COORDS_MAX:
        fg = np.sort(np.random.default_rng(seed).choice(fg, FG_COORDS_MAX, replace=False))
    coords = np.stack(np.unravel_index(fg, bc.shape), axis=1).astype(np.int32)
    return img, inst, bc, coords


def _file_key(path: Path | None) -> list:
    if path is None:
        return [None]
    st = os.stat(path) if path.exists() else None
    return [str(path.resolve()), st.st_size if st else None, st.st_mtime_ns if st else None]


def cache_key(
    entry: SampleEntry, normalization: dict, target_particle_size: float, border_thickness: int
) -> str:
    """A short hash of everything a prepared sample depends on."""
    doc = {
        "version": CACHE_VERSION,
        "image": _file_key(entry.image),
        "label": _file_key(entry.label),
        "phases": _file_key(entry.phases),
        "size_px": list(entry.metadata.particle_size_voxels()),
        "normalization": resolve_config(normalization),
        "target": float(target_particle_size),
        "border": int(border_thickness),
    }
    return hashlib.sha1(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _load(folder: Path, name: str, zoom) -> PreparedSample:
    has_phases = (folder / "phases.npy").exists()
    return PreparedSample(
        name=name,
        image=np.load(folder / "image.npy", mmap_mode="r"),
        instances=np.load(folder / "instances.npy", mmap_mode="r"),
        border_core=np.load(folder / "border_core.npy", mmap_mode="r"),
        fg_coords=np.load(folder / "fg_coords.npy"),
        zoom=tuple(zoom),
        phases=np.load(folder / "phases.npy", mmap_mode="r") if has_phases else None,
        phase_sample=np.load(folder / "phase_sample.npy") if has_phases else None,
        folder=folder,
    )


def _prepare_phases(
    entry: SampleEntry, shape: tuple[int, ...], out_shape: tuple[int, ...], normalization: dict
) -> tuple[np.ndarray, np.ndarray]:
    """The resized phase map and the phases at the normalization's sample positions."""
    phases = np.asarray(read_volume(entry.phases))
    if phases.shape != tuple(shape) or phases.dtype != np.uint8:
        raise ValueError(
            f"{entry.phases}: phase map must be uint8 of the image's shape {tuple(shape)}, got "
            f"{phases.dtype} {phases.shape}"
        )
    cfg = resolve_config(normalization)
    sampling = (cfg["n_blocks"], cfg["block"]) if cfg["scheme"] == "percentile" else ()
    sample = sample_voxels(phases, *sampling).astype(np.uint8)
    index = [nearest_source_index(n, m) for n, m in zip(shape, out_shape, strict=True)]
    return np.ascontiguousarray(phases[np.ix_(*index)]), sample


def prepare_sample(
    entry: SampleEntry,
    normalization: dict,
    target_particle_size: float,
    border_thickness: int,
    cache_dir: str | os.PathLike | None = None,
) -> PreparedSample:
    """Prepare one labelled dataset sample, reusing the cache when it is up to date.

    Args:
        entry: A ``dataset.json`` entry with a label.
        normalization: The intensity normalization config (resolved: a ``global_zscore`` one
            carries the training statistics), fitted to this sample's scan.
        target_particle_size: Mean particle diameter in voxels after resizing.
        border_thickness: Border width in voxels of the resized space.
        cache_dir: Folder for prepared ``.npy`` files; None keeps everything in memory.

    Returns:
        The prepared sample.

    Raises:
        ValueError: If the entry has no label or its volumes are invalid (names the file).
    """
    if entry.label is None:
        raise ValueError(f"sample {entry.name!r} ({entry.image}) has no label: cannot train on it")
    zoom = zoom_factors(entry.metadata.particle_size_voxels(), target_particle_size)
    folder = None
    if cache_dir is not None:
        key = cache_key(entry, normalization, target_particle_size, border_thickness)
        folder = Path(cache_dir) / f"{entry.name}-{key}"
        if (folder / "done.json").exists():
            return _load(folder, entry.name, zoom)
    image, labels = read_sample(entry)
    image, labels = np.asarray(image), np.asarray(labels)
    check_image(image, entry.image)
    check_labels(labels, entry.label, image.shape, entry.image)
    try:
        normalize = normalization_for_scan(image, normalization)
    except ValueError as err:
        raise ValueError(f"{entry.image}: {err}") from err
    arrays = prepare_arrays(image, labels, normalize, zoom, border_thickness)
    phases = phase_sample = None
    if entry.phases is not None:
        phases, phase_sample = _prepare_phases(entry, image.shape, arrays[0].shape, normalization)
    if folder is None:
        return PreparedSample(
            entry.name, *arrays, zoom=zoom, phases=phases, phase_sample=phase_sample
        )
    folder.mkdir(parents=True, exist_ok=True)
    names = ["image.npy", "instances.npy", "border_core.npy", "fg_coords.npy"]
    if phases is not None:
        arrays = (*arrays, phases, phase_sample)
        names += ["phases.npy", "phase_sample.npy"]
    for fname, arr in zip(names, arrays, strict=True):
        with atomic_path(folder / fname) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, arr)
    write_json_atomic(folder / "done.json", {"name": entry.name, "zoom": list(zoom)})
    return _load(folder, entry.name, zoom)
