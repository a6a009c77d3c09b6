"""Predict's checks at the door and on the result: errors and warnings.

Errors for what cannot give a valid result; warnings (log and ``summary.json``) for what gives
a result worth checking.

Errors (``ValueError`` naming the file, exit status 2 from predict.py):

- NaN or inf anywhere, a constant scan, a non-numeric dtype (:func:`check_scan_values`,
  streamed over slabs: the scan is never loaded whole);
- an axis shorter than one particle diameter: no particle fits, and what comes out would be
  fragments of the border (:func:`check_scan_geometry`).

Warnings:
- the network grid thinner than one window along an axis: that axis is padded (symmetric
  zero padding, as MONAI's sliding window does), so particles near those faces see less
  context;
- no particle, or one, in the result: the particle size or the scan is likely wrong;
- a scan whose network-input histogram is far from all of the model's reference scans
  (:func:`check_input_reference`, from statistics stored in the model file).
"""

from __future__ import annotations

import logging
from typing import Any

from particleseg.inference.inputs import ScanInput
from particleseg.inference.plan import ChunkPlan
from particleseg.io.validation import check_image
from particleseg.transforms.input_reference import compare_to_reference, normalized_sample

log = logging.getLogger(__name__)
AXES = "zyx"


def check_scan_values(array: Any, scan: ScanInput) -> None:
    """Stream over the scan once: finite values, real numeric dtype, not constant.

    Raises:
        ValueError: ``"<file>: ..."`` naming the first slices with NaN/inf, or the constant,
            or the reason its voxels cannot be read (a corrupt chunk, a truncated file).
    """
    try:
        check_image(array, scan.path)
    except ValueError:
        raise
    except Exception as err:  # noqa: BLE001 - codecs and readers raise their own types
        raise ValueError(f"{scan.path}: {unreadable(err)}") from err


def unreadable(err: Exception) -> str:
    """The message for voxels that cannot be read: a corrupt chunk, a truncated file."""
    return f"cannot read the scan's voxels, the file is damaged ({type(err).__name__}: {err})"


def check_particle_fits(scan: ScanInput) -> None:
    """Refuse a scan with an axis shorter than its mean particle diameter (no particle fits).

    Needs only the scan's shape and particle size, so predict runs it before the model loads;
    a size still to be estimated (``particle_size_px`` None) passes here and is checked later.

    Raises:
        ValueError: naming the file, the thin axes and what to check.
    """
    if scan.particle_size_px is None:
        return
    thin = [
        f"{AXES[i]}: {n} voxels < {d:.1f}"
        for i, (n, d) in enumerate(zip(scan.shape, scan.particle_size_px, strict=True))
        if n < d
    ]
    if thin:
        raise ValueError(
            f"{scan.path}: the scan of shape {tuple(scan.shape)} is thinner than one particle "
            f"({', '.join(thin)} voxels of mean diameter), so no particle fits in it; check "
            "particle_size_px / particle_size, or give a larger scan"
        )


def check_scan_geometry(scan: ScanInput, plan: ChunkPlan, patch_size) -> list[str]:
    """Refuse a scan too thin for one particle; warn where the network grid is padded.

    Args:
        scan: the resolved scan (shape and particle size in voxels, Z, Y, X).
        plan: the chunk plan on the network grid.
        patch_size: the model's window (Z, Y, X).

    Returns:
        The warnings (also logged).

    Raises:
        ValueError: an axis of the scan is shorter than the mean particle diameter.
    """
    check_particle_fits(scan)
    warnings = []
    padded = [
        f"{AXES[i]} ({n} < {p})"
        for i, (n, p) in enumerate(zip(plan.network_shape, patch_size, strict=True))
        if n < p
    ]
    if padded:
        warnings.append(
            f"the network grid {tuple(plan.network_shape)} is thinner than one window "
            f"{tuple(patch_size)} along {', '.join(padded)}: zero-padded there, so particles "
            "near those faces see less context than in training"
        )
    for text in warnings:
        log.warning("%s: %s", scan.path, text)
    return warnings


def result_warnings(scan: ScanInput, n_particles: int | None) -> list[str]:
    """Warnings about the result (no particle, or one) and a doubtful model size (logged)."""
    from particleseg.inference.size_estimate import estimate_warnings

    warnings = estimate_warnings(scan.estimate)
    if n_particles == 0:
        warnings.append(
            "no particle found: check the particle size (particle_size_px="
            f"{scan.particle_size_px[0]:.3g} voxels) and that the scan shows particles in a "
            "matrix; particles smaller than postprocess.min_relative_size of the mean are dropped"
        )
    elif n_particles == 1:
        warnings.append(
            "a single particle found: the particle size may be far too large, or the particles "
            "merged into one; check particle_size_px and the overlay"
        )
    for text in warnings:
        log.warning("%s: %s", scan.path, text)
    return warnings


def check_input_reference(
    array: Any, scan: ScanInput, normalization: dict[str, Any], reference: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Compare the scan's normalized histogram with the model's reference scans.

    Args:
        array: the opened scan (Z, Y, X); a bounded sample of it is read.
        scan: the resolved scan (its path names the warning).
        normalization: the model's scheme config.
        reference: the model's input reference; empty when it stores none.

    Returns:
        The record for ``summary.json`` (``{"available": False}`` without a reference, else
        distance, nearest reference, threshold and ``far``) and the warnings (also logged).
    """
    if not reference:
        return {"available": False}, []
    values = normalized_sample(array, normalization)
    record = {"available": True, **compare_to_reference(values, reference)}
    warnings = []
    if record["far"]:
        warnings.append(
            f"the scan's grey-value histogram (after the model's normalization) is "
            f"{record['distance']:.3f} from the nearest of the model's reference scans "
            f"({record['nearest']}), beyond the {record['threshold']:.3f} the model's references "
            "show among themselves: the model was not checked on scans like this one; inspect "
            "overlay.png, or compare with a ThreshWater baseline, before trusting the numbers"
        )
    for text in warnings:
        log.warning("%s: %s", scan.path, text)
    return record, warnings


__all__ = [
    "check_input_reference",
    "check_scan_geometry",
    "check_scan_values",
    "result_warnings",
    "unreadable",
]
