"""The particle size from the model itself (``particle_size=model``).

The classical estimate (:func:`particleseg.analysis.estimate_particle_size`) needs particles that
stand out from a matrix; a dense packing of grains in air (soil, sand) has none, and it refuses
such scans. The network separates touching grains wherever their size is near the one it was
trained for, so it can measure them itself, by a fixed-point iteration:

1. Start from a first guess ``g`` of the mean diameter (voxels of the finest axis): the classical
   estimate when it works, else the model's own target size (no resize).
2. Resize blocks of the scan so that particles of ``g`` voxels get the model's target size, each
   to about :data:`NETWORK_BLOCK`^3 voxels of the network's grid: the blocks of a grid of
   non-overlapping cells laid over the scan, nearest to its centre first (a rim or a scan's
   faces are where a scan is worst), at least :data:`MIN_BLOCKS` and then more until
   :data:`ENOUGH_PARTICLES` whole particles are found, at most :data:`MAX_BLOCKS`; predict them
   (the sliding window of :func:`~particleseg.inference.sliding_window.predict_probabilities`)
   and turn the border-core maps into particles
   (:func:`~particleseg.targets.border_core_to_instance`, with the model's tuned small-core
   rule).
3. Measure their equivalent diameters back in scan voxels. Particles cut by a face of a block
   that lies inside the scan are left out and the others weighted by the Miles-Lantuejoul
   factor, as the classical estimate does; specks below ``RELATIVE_MIN_DIAMETER`` of the median
   are dropped. The weighted mean is the new guess: the quantity that datasets store as
   ``particle_size`` and that the resize is defined on (a median would sit 6-13% below it for
   the log-normal sizes of the training scans). Both steps are the classical estimate's own
   (:func:`~particleseg.analysis.particle_size.block_diameters`, ``mean_diameter``).
4. Repeat from 2 until the guess moves by at most ``tolerance`` (relative), at most
   ``max_passes`` passes. A run that has not settled (a model whose measurement depends on the
   zoom it is given swings around its fixed point) returns the median of its passes'
   measurements with ``converged`` False, and predict warns.

Every pass reads at most :data:`MAX_BLOCKS` blocks of at most :data:`MAX_SCAN_BLOCK_VOXELS`
voxels of the scan, and never more than the scan.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from particleseg.analysis.particle_size import FEW_PARTICLES, block_diameters, mean_diameter
from particleseg.inference.inputs import ScanInput
from particleseg.inference.model import LoadedModel
from particleseg.inference.settings import INFERENCE_DEFAULTS
from particleseg.inference.sliding_window import predict_probabilities
from particleseg.spacing import check_spacing
from particleseg.targets import border_core_to_instance
from particleseg.transforms.normalization import Normalization
from particleseg.transforms.resize import resize_image, resized_shape, zoom_factors

#: Edge, in voxels of the network's grid, of a measured block.
NETWORK_BLOCK = 128
#: Blocks per pass: at least MIN_BLOCKS, then more until ENOUGH_PARTICLES, at most MAX_BLOCKS.
MIN_BLOCKS = 3
ENOUGH_PARTICLES = 30
MAX_BLOCKS = 8
#: Most voxels of the scan read for one block (large particles: the block is shrunk).
MAX_SCAN_BLOCK_VOXELS = 32_000_000
#: Passes at most; a relative move below ``TOLERANCE`` ends them.
MAX_PASSES = 4
TOLERANCE = 0.05


@dataclass(frozen=True)
class SizePass:
    """One pass: the guess it resized for, what it measured, from how many particles."""

    guess_px: float
    zoom: tuple[float, float, float]
    measured_px: float
    n_particles: int


@dataclass(frozen=True)
class ModelSizeEstimate:
    """Result of :func:`estimate_size_with_model`.

    Attributes:
        diameter_px: Mean equivalent diameter, voxels of the finest axis.
        diameter_px_zyx: The same in voxels of each axis (Z, Y, X).
        first_guess_px: Where the passes started (voxels of the finest axis).
        first_guess_source: ``"classical"`` or ``"model target size"``.
        passes: The passes, in order.
        converged: Whether the last pass moved the guess by at most the tolerance.
        voxels_read: Voxels of the scan read over all passes.
    """

    diameter_px: float
    diameter_px_zyx: tuple[float, float, float]
    first_guess_px: float
    first_guess_source: str
    passes: tuple[SizePass, ...]
    converged: bool
    voxels_read: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dictionary (``method`` says what made it)."""
        out = dataclasses.asdict(self)
        out["diameter_px_zyx"] = list(self.diameter_px_zyx)
        out["passes"] = [{**p, "zoom": list(p["zoom"])} for p in out["passes"]]
        return {"method": "model", **out}


def _blocks(shape, block, n_max) -> list[tuple[slice, slice, slice]]:
    """Up to ``n_max`` non-overlapping boxes of ``block``, nearest to the scan's centre first.

    The boxes are the cells of a grid of ``block``-sized cells centred on the scan.
    """
    counts = [max(1, s // b) for s, b in zip(shape, block, strict=True)]
    offset = [(s - k * b) // 2 for s, k, b in zip(shape, counts, block, strict=True)]
    centre = np.asarray(shape) / 2
    cells = []
    for index in np.ndindex(*counts):
        start = [o + i * b for o, i, b in zip(offset, index, block, strict=True)]
        middle = np.asarray(start) + np.asarray(block) / 2
        cells.append((float(np.sum((middle - centre) ** 2)), index, start))
    cells.sort()
    return [
        tuple(slice(a, a + b) for a, b in zip(start, block, strict=True))
        for _, _, start in cells[:n_max]
    ]


def _block_shape(shape, zoom, network_block: int) -> tuple[int, int, int]:
    """The scan block that resizes to about ``network_block``^3, within the scan and the cap."""
    block = [min(s, max(1, math.ceil(network_block / z))) for s, z in zip(shape, zoom, strict=True)]
    excess = math.prod(block) / MAX_SCAN_BLOCK_VOXELS
    if excess > 1:
        block = [max(1, int(b / excess ** (1 / 3))) for b in block]
    return tuple(block)


def measure_blocks(
    array: Any,
    model: LoadedModel,
    normalize: Normalization,
    guess_zyx: tuple[float, float, float],
    ratio: np.ndarray,
    *,
    postprocess: dict,
    overlap: float = INFERENCE_DEFAULTS["overlap"],
    autocast: bool = False,
    net=None,
    network_block: int = NETWORK_BLOCK,
    max_blocks: int = MAX_BLOCKS,
    min_blocks: int = MIN_BLOCKS,
    enough: int = ENOUGH_PARTICLES,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Predict the sampled blocks at ``guess_zyx`` and measure their particles.

    Args:
        array: (Z, Y, X) scan, read lazily block by block.
        model: the network and its target size, patch and border.
        normalize: the scan's intensity normalization (fitted on the whole scan).
        guess_zyx: particle diameter (voxels per axis) that the resize assumes.
        ratio: (3,) finest spacing / spacing per axis (1 for isotropic voxels).
        postprocess: ``small_core_distance``, ``small_core_fraction``,
            ``small_core_max_distance`` and ``connectivity`` of the border-core conversion.
        overlap: window overlap of the sliding window.
        autocast: run the network under bfloat16 autocast.
        net: the forward call (an engine's, :mod:`particleseg.inference.engines`); default
            ``model.net``.
        network_block: edge of a block on the network grid.
        max_blocks: blocks read at most.
        min_blocks: blocks read at least (when the scan has them).
        enough: whole particles after which no further block is read.

    Returns:
        (diameters in voxels of the finest axis, Miles-Lantuejoul weights, voxels read).
    """
    shape = tuple(int(s) for s in array.shape)
    zoom = zoom_factors(guess_zyx, model.target_particle_size)
    block = _block_shape(shape, zoom, network_block)
    # a network voxel measured in voxels of the scan's finest axis
    spacing = (1.0 / ratio) / np.asarray(zoom)
    keys = ("small_core_distance", "small_core_fraction", "small_core_max_distance")
    rule = {k: postprocess[k] for k in (*keys, "connectivity")}
    diameters, weights, read = [], [], 0
    for k, box in enumerate(_blocks(shape, block, max_blocks)):
        if k >= min_blocks and sum(len(d) for d in diameters) >= enough:
            break
        values = np.asarray(array[box])
        read += values.size
        image = resize_image(normalize(values.astype(np.float32)), resized_shape(block, zoom))
        x = torch.from_numpy(image)[None, None]
        with torch.no_grad():
            probs = predict_probabilities(
                net or model.net, x, model.patch_size, overlap=overlap, autocast=autocast
            )
        border_core = probs[0].argmax(0).to(torch.uint8).numpy()
        labels = border_core_to_instance(border_core, **rule)
        cut = [(b.start > 0, b.stop < s) for b, s in zip(box, shape, strict=True)]
        d, w = block_diameters(labels, spacing, cut)
        diameters.append(d)
        weights.append(w)
    return np.concatenate(diameters), np.concatenate(weights), read


def estimate_size_with_model(
    array: Any,
    model: LoadedModel,
    normalize: Normalization,
    spacing: Any = None,
    first_guess_px: float | None = None,
    *,
    postprocess: dict,
    overlap: float = INFERENCE_DEFAULTS["overlap"],
    autocast: bool = False,
    net=None,
    max_passes: int = MAX_PASSES,
    tolerance: float = TOLERANCE,
    network_block: int = NETWORK_BLOCK,
    max_blocks: int = MAX_BLOCKS,
) -> ModelSizeEstimate:
    """Estimate the mean particle diameter of a scan with the network (module docstring).

    Args:
        array: (Z, Y, X) scan (numpy, memmap or zarr; read block by block).
        model: the loaded network.
        normalize: the scan's intensity normalization for this model.
        spacing: voxel size (Z, Y, X) or None (isotropic).
        first_guess_px: start, in voxels of the finest axis; None starts at the model's target
            size (the scan as it is).
        postprocess: the border-core conversion's settings (predict's resolved ones).
        overlap: window overlap of the sliding window.
        autocast: run the network under bfloat16 autocast.
        net: the forward call (an engine's, :mod:`particleseg.inference.engines`); default
            ``model.net``.
        max_passes: passes at most.
        tolerance: relative move of the guess that ends the passes.
        network_block: edge of a block on the network grid.
        max_blocks: blocks per pass at most (see the module docstring).

    Returns:
        The :class:`ModelSizeEstimate`.

    Raises:
        ValueError: the model found no whole particle in the blocks of a pass.
    """
    if max_passes < 1 or not tolerance > 0:
        raise ValueError(f"max_passes must be >= 1 and tolerance > 0: {max_passes}, {tolerance}")
    spacing = np.ones(3) if spacing is None else np.asarray(check_spacing(spacing), float)
    ratio = spacing.min() / spacing
    source = "classical" if first_guess_px is not None else "model target size"
    guess = float(first_guess_px if first_guess_px is not None else model.target_particle_size)
    first, passes, read, converged = guess, [], 0, False
    for _ in range(max_passes):
        guess_zyx = tuple(float(v) for v in guess * ratio)
        d, w, n_read = measure_blocks(
            array,
            model,
            normalize,
            guess_zyx,
            ratio,
            postprocess=postprocess,
            overlap=overlap,
            autocast=autocast,
            net=net,
            network_block=network_block,
            max_blocks=max_blocks,
        )
        read += n_read
        measured, n = mean_diameter(d, w)
        zoom = zoom_factors(guess_zyx, model.target_particle_size)
        passes.append(SizePass(guess, zoom, measured, n))
        if n == 0:
            raise ValueError(
                f"the model found no whole particle in {n_read} voxels resized for particles "
                f"of {guess:.1f} voxels"
            )
        converged = abs(measured - guess) <= tolerance * guess
        guess = measured
        if converged:
            break
    if not converged and len(passes) > 1:  # oscillating: the middle of what was measured
        guess = float(np.median([p.measured_px for p in passes]))
    return ModelSizeEstimate(
        diameter_px=guess,
        diameter_px_zyx=tuple(float(v) for v in guess * ratio),
        first_guess_px=first,
        first_guess_source=source,
        passes=tuple(passes),
        converged=converged,
        voxels_read=read,
    )


def refine_particle_size(
    scan: ScanInput, model: LoadedModel, inference: dict, postprocess: dict | None
) -> ScanInput:
    """``particle_size=model``: the scan with the model's measurement as its particle size.

    Any other scan comes back unchanged. The image's own estimate, when it worked, is the first
    guess and is kept under ``estimate["first_guess"]``.

    Args:
        scan: a resolved scan.
        model: the loaded model.
        inference: predict's inference settings (``overlap``, ``engine``, ``precision``).
        postprocess: predict's post-processing settings (None values: the model's tuned ones).

    Raises:
        ValueError: naming the scan, when the model finds no particle to measure.
    """
    if scan.size_source != "model":
        return scan
    from particleseg.inference.cpu_stages import resolve_postprocess
    from particleseg.inference.engines import make_engine
    from particleseg.inference.pipeline import scan_normalization
    from particleseg.inference.settings import resolve_inference
    from particleseg.io import release_pages

    first = scan.estimate
    normalize = scan_normalization(scan, model)
    engine = make_engine(model, inference)
    array = scan.open()
    try:
        est = estimate_size_with_model(
            array,
            model,
            normalize,
            scan.spacing,
            None if first is None else float(first["diameter_px"]),
            postprocess=resolve_postprocess(postprocess, model.postprocess),
            overlap=float(resolve_inference(inference)["overlap"]),
            autocast=engine.autocast,
            net=engine.forward,
        )
    except ValueError as err:
        raise ValueError(
            f"{scan.path}: particle_size=model failed ({err}); give particle_size_px=... "
            "(mean diameter in voxels) instead"
        ) from err
    finally:
        release_pages(array)
    estimate = {**est.to_dict(), "first_guess": first}
    return dataclasses.replace(scan, particle_size_px=est.diameter_px_zyx, estimate=estimate)


def estimate_warnings(estimate: dict | None) -> list[str]:
    """What to check about a ``particle_size=model`` estimate: not settled, or few particles."""
    if not estimate or estimate.get("method") != "model":
        return []
    out = []
    last = estimate["passes"][-1]
    if not estimate["converged"]:
        out.append(
            f"particle_size=model did not settle in {len(estimate['passes'])} passes (last two "
            f"guesses {last['guess_px']:.3g} and {last['measured_px']:.3g} voxels); check the "
            "overlay, or give particle_size_px"
        )
    if last["n_particles"] < FEW_PARTICLES:
        out.append(
            f"particle_size=model measured only {last['n_particles']} whole particles; the size "
            "may be off: give particle_size_px if you know it"
        )
    return out
