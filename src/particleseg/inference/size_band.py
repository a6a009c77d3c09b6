"""Size-tolerant inference: resize a scan only as far as the model's validated size band needs.

A model sees particles of ``target_particle_size`` voxels in training, and with scale
augmentation a band around it. Resizing every scan so that its particles are exactly the target
size costs the cube of the zoom for small particles: 8-voxel particles and a target of 24 make
the network grid 27 times the scan. Within the band the model does as well without the resize.

- :func:`network_particle_size` and :func:`band_zoom`: the rule. The particle diameter on the
  network grid is the scan's own diameter (along its finest axis) clipped into the band; coarser
  axes are zoomed to match, so particles stay isotropic. A model without a band is resized to
  its target size, as before.
- :func:`measure_size_band`: the band, measured on labelled validation scans: F1_instance of
  crops predicted at network diameters ``ratio x target`` for a ladder of ratios, the band being
  the widest run of ratios around 1 whose mean F1_instance stays within ``tolerance`` of the one
  at the target size. ``python -m particleseg.inference.size_band MODEL DATASET OUT.json``;
  ``python -m particleseg.inference.export CKPT MODEL --size-band OUT.json`` stores it.

This module's rule imports neither torch nor the pipeline; the measurement loads them.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from particleseg.inference.settings import INFERENCE_DEFAULTS

#: Network diameters measured, as ratios of the target size.
RATIOS = (0.5, 0.625, 0.75, 0.875, 1.0, 1.25, 1.5, 1.75, 2.0)
#: The band keeps ratios whose mean F1_instance is at most this far below the target's.
TOLERANCE = 0.02
#: Edge of the crop on the network grid that one measurement predicts.
CROP_EDGE = 160
RULES = ("band", "target")
#: The rule when predict's settings name none (inference.resize, conf/inference/default.yaml).
DEFAULT_RULE = INFERENCE_DEFAULTS["resize"]


def check_band(band: Any, target: float, where: str = "size_band") -> tuple[float, float] | None:
    """``band`` as (low, high) network diameters around ``target``, or None.

    Raises:
        ValueError: naming ``where``, unless ``0 < low <= target <= high`` (finite).
    """
    if band is None:
        return None
    try:
        low, high = (float(v) for v in band)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where} must be [low, high] in voxels, got {band!r}") from err
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= target <= high):
        raise ValueError(
            f"{where} must hold the target size {target:g}: 0 < low <= {target:g} <= high, "
            f"got [{low:g}, {high:g}]"
        )
    return low, high


def network_particle_size(
    particle_size_px: Sequence[float],
    target: float,
    band: tuple[float, float] | None,
    rule: str = DEFAULT_RULE,
) -> float:
    """The particle diameter on the network grid (voxels) that the rule chooses.

    Args:
        particle_size_px: the scan's mean diameter in voxels per axis (Z, Y, X).
        target: the model's target size.
        band: the model's validated band, or None.
        rule: ``"band"`` (clip the scan's diameter along its finest axis into the band) or
            ``"target"`` (always the target size).
    """
    if rule not in RULES:
        raise ValueError(f"inference.resize must be one of {RULES}, got {rule!r}")
    if rule == "target" or band is None:
        return float(target)
    finest = max(float(s) for s in particle_size_px)  # most voxels across a particle
    return float(min(max(finest, band[0]), band[1]))


def band_zoom(
    particle_size_px: Sequence[float],
    target: float,
    band: tuple[float, float] | None,
    rule: str = DEFAULT_RULE,
) -> tuple[float, float, float]:
    """Zoom per axis (Z, Y, X) that gives particles :func:`network_particle_size` voxels."""
    from particleseg.transforms.resize import zoom_factors

    size = network_particle_size(particle_size_px, target, band, rule)
    return zoom_factors(particle_size_px, size)


def choose_band(ratios: Sequence[float], scores: Sequence[float], tolerance: float) -> list[float]:
    """[low, high]: the widest run of sorted ``ratios`` around 1 scoring within ``tolerance``.

    The run holds 1.0 (the target size) and extends while the neighbours' scores are at least the
    score at 1 minus ``tolerance``.
    """
    ratios, scores = list(ratios), list(scores)
    if 1.0 not in ratios:
        raise ValueError(f"the ratios must hold 1.0 (the target size), got {ratios}")
    i = lo = hi = ratios.index(1.0)
    floor = scores[i] - tolerance
    while lo > 0 and scores[lo - 1] >= floor:
        lo -= 1
    while hi < len(ratios) - 1 and scores[hi + 1] >= floor:
        hi += 1
    return [ratios[lo], ratios[hi]]


def _crop(shape: Sequence[int], zoom: Sequence[float], edge: int) -> tuple[slice, ...]:
    """A central box of the scan whose resize is at most ``edge`` network voxels per axis."""
    size = [min(s, max(1, int(edge / z))) for s, z in zip(shape, zoom, strict=True)]
    return tuple(slice((s - n) // 2, (s - n) // 2 + n) for s, n in zip(shape, size, strict=True))


def measure_size_band(
    model_path: str | Path,
    dataset: str | Path,
    out: str | Path,
    *,
    split: str = "val",
    ratios: Sequence[float] = RATIOS,
    tolerance: float = TOLERANCE,
    crop_edge: int = CROP_EDGE,
    work: str | Path | None = None,
    trainer=None,
    inference: dict | None = None,
) -> dict:
    """Measure F1_instance against the network diameter on a split's scans; write ``out``.

    Every labelled scan of ``split`` is cropped (centred) so that its resize is at most
    ``crop_edge`` network voxels per axis, and predicted with the scan told a particle size of
    ``size / ratio``, so that its particles are ``ratio x target`` voxels on the network grid.

    Returns:
        ``{"band": [low, high] (network voxels), "ratios", "mean_f1_instance", "per_scan",
        ...}``, also written to ``out``.

    Raises:
        ValueError: no labelled scans in the split, or an unreadable model or dataset.
    """
    import dataclasses

    from particleseg.evaluation.scoring import score_sample
    from particleseg.inference.inputs import resolve_scan
    from particleseg.inference.lightning import quiet_trainer
    from particleseg.inference.model import load_checkpoint
    from particleseg.inference.pipeline import predict_scan
    from particleseg.inference.run_state import file_sha256
    from particleseg.io import load_dataset, read_volume
    from particleseg.io.atomic import write_json_atomic
    from particleseg.transforms.resize import zoom_factors

    out = Path(out)
    work = Path(work) if work is not None else out.with_name(out.stem + "_work")
    entries = [e for e in load_dataset(dataset).split(split) if e.label is not None]
    if not entries:
        raise ValueError(f"{Path(dataset) / 'dataset.json'}: no labelled scans in {split!r}")
    ratios = sorted(float(r) for r in ratios)
    model = load_checkpoint(model_path)
    target = model.target_particle_size
    trainer = trainer or quiet_trainer()
    inference = {**(inference or {}), "resize": "target"}
    per_scan: dict[str, list[float]] = {}
    for entry in entries:
        size = tuple(float(s) for s in entry.metadata.particle_size_voxels())
        image, labels = read_volume(entry.image), read_volume(entry.label)
        scores = []
        for ratio in ratios:
            told = tuple(s / ratio for s in size)
            box = _crop(image.shape, zoom_factors(told, target), crop_edge)
            folder = work / f"{entry.name}-r{ratio:g}"
            folder.mkdir(parents=True, exist_ok=True)
            if not (folder / "crop.npy").exists():  # rewritten, it would not be the same input
                np.save(folder / "crop.npy", np.asarray(image[box]))
            scan = resolve_scan(folder / "crop.npy", particle_size_px=1.0)
            scan = dataclasses.replace(scan, particle_size_px=told, size_source="size band")
            predict_scan(
                scan,
                folder / "prediction",
                model,
                trainer,
                inference=inference,
                outputs={"overlay": False, "analysis": False},
                config={"size_band": str(out)},
            )
            prediction = np.asarray(read_volume(folder / "prediction" / "instances.zarr"))
            score = score_sample(prediction, np.asarray(labels[box]), None)["f1_instance"]
            scores.append(float(score))
        per_scan[entry.name] = scores
    mean = [float(np.mean([s[i] for s in per_scan.values()])) for i in range(len(ratios))]
    low, high = choose_band(ratios, mean, tolerance)
    result = {
        "band": [low * target, high * target],
        "band_ratios": [low, high],
        "target_particle_size": target,
        "ratios": ratios,
        "mean_f1_instance": mean,
        "tolerance": tolerance,
        "per_scan": per_scan,
        "crop_edge": crop_edge,
        "model": str(model_path),
        "model_sha256": file_sha256(Path(model_path)),
        "dataset": str(Path(dataset).resolve()),
        "split": split,
    }
    write_json_atomic(out, result)
    return result


def main(argv: list[str] | None = None) -> None:
    """``python -m particleseg.inference.size_band MODEL DATASET OUT.json [--split val]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--split", default="val")
    parser.add_argument("--ratios", type=float, nargs="+", default=list(RATIOS))
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    parser.add_argument("--crop-edge", type=int, default=CROP_EDGE)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        result = measure_size_band(
            args.model,
            args.dataset,
            args.out,
            split=args.split,
            ratios=args.ratios,
            tolerance=args.tolerance,
            crop_edge=args.crop_edge,
            work=args.work,
        )
    except ValueError as err:
        parser.exit(2, f"size_band: {err}\n")
    curve = ", ".join(
        f"{r:g}: {f:.3f}" for r, f in zip(result["ratios"], result["mean_f1_instance"], strict=True)
    )
    print(f"F1_instance by ratio to the target size ({curve}); band {result['band']} -> {args.out}")


if __name__ == "__main__":
    main()
