"""Intensity normalization before the network: per scan (default) or the global z-score.

A model is only usable out of the box if the grey values it sees do not depend on the scanner's
gain, offset or bit depth. The default scheme, ``percentile``, therefore normalizes each scan from
its own statistics: robust low and high levels (the ``lower`` and ``upper`` quantiles, by default
0.5% and 99.5%: the darkest phase, air or matrix, and the brightest particles) are measured on a
bounded sample of the scan's voxels and mapped to 0 and 1. Quantiles move with any increasing
affine map of the grey values, so ``a * x + b`` (a > 0) and a change of dtype give the same
network input up to rounding. ``global_zscore`` is the paper's recipe: one mean and standard
deviation of all training voxels, the same for every scan.

The sample (:func:`sample_voxels`) is a fixed set of small blocks spread over the scan on a
jittered grid: it reads at most ``n_blocks * block**3`` voxels however large the scan is, never
the whole scan, and is computed once per scan, before any chunk, so every chunk is normalized
with the same two numbers.

- :func:`sample_voxels`: the bounded lazy sample;
- :func:`fit_normalization`: the scheme's two numbers from a sample of values;
- :func:`normalization_for_scan`: both, for a scan and a scheme config;
- :class:`Normalization`: the fitted map, applied with ``norm(x)``, stored in JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

SCHEMES = ("percentile", "global_zscore")
#: Defaults of the ``percentile`` scheme (a model stores the values it was trained with).
LOWER, UPPER = 0.005, 0.995
SAMPLE_BLOCKS = 64
SAMPLE_BLOCK = 16
#: Fewest finite sampled voxels the quantiles are estimated from.
MIN_SAMPLE_VOXELS = 1000
_PERCENTILE_KEYS = ("lower", "upper", "values", "n_blocks", "block")


def resolve_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A complete, validated scheme config (missing sampling knobs filled in).

    Args:
        config: ``{"scheme": "percentile"[, "lower", "upper", "values", "n_blocks", "block"]}``
            (the ``lower`` and ``upper`` quantiles, default :data:`LOWER` and :data:`UPPER`, are
            mapped to ``values``, default ``[0, 1]``) or
            ``{"scheme": "global_zscore", "mean": m, "std": s}``.

    Returns:
        A plain dict with every key of the scheme.

    Raises:
        ValueError: unknown scheme, a missing or out-of-range value; the message names the key.
    """
    cfg = dict(config or {})
    scheme = cfg.get("scheme")
    if scheme not in SCHEMES:
        raise ValueError(f"normalization scheme must be one of {SCHEMES}, got {scheme!r}")
    if scheme == "global_zscore":
        mean, std = cfg.get("mean"), cfg.get("std")
        ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (mean, std))
        if not ok or not math.isfinite(mean) or not math.isfinite(std) or std <= 0:
            raise ValueError(
                "normalization global_zscore needs a finite 'mean' and a positive 'std', got "
                f"mean={mean!r}, std={std!r}"
            )
        return {"scheme": scheme, "mean": float(mean), "std": float(std)}
    cfg.setdefault("lower", LOWER)
    cfg.setdefault("upper", UPPER)
    cfg.setdefault("n_blocks", SAMPLE_BLOCKS)
    cfg.setdefault("block", SAMPLE_BLOCK)
    cfg.setdefault("values", [0.0, 1.0])
    unknown = set(cfg) - {"scheme", *_PERCENTILE_KEYS}
    if unknown:
        raise ValueError(f"normalization percentile: unknown keys {sorted(unknown)}")
    lower, upper = cfg.get("lower"), cfg.get("upper")
    if not all(isinstance(q, int | float) and not isinstance(q, bool) for q in (lower, upper)):
        raise ValueError(f"normalization percentile needs 'lower' and 'upper', got {cfg}")
    if not 0 <= lower < upper <= 1:
        raise ValueError(
            f"normalization percentile: need 0 <= lower < upper <= 1, got {lower}, {upper}"
        )
    values = cfg["values"]
    try:
        v_lo, v_hi = (float(v) for v in values)
    except (TypeError, ValueError):
        v_lo = v_hi = math.nan
    if not (math.isfinite(v_lo) and math.isfinite(v_hi) and v_hi > v_lo):
        raise ValueError(
            f"normalization percentile: 'values' must be two finite numbers [low, high] with "
            f"high > low, got {values!r}"
        )
    for key in ("n_blocks", "block"):
        v = cfg[key]
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(
                f"normalization percentile: '{key}' must be an integer >= 1, got {v!r}"
            )
    return {
        "scheme": scheme,
        "lower": float(lower),
        "upper": float(upper),
        "values": [v_lo, v_hi],
        "n_blocks": int(cfg["n_blocks"]),
        "block": int(cfg["block"]),
    }


@dataclass(frozen=True)
class Normalization:
    """A fitted intensity map ``(x - offset) / scale``, float32; non-finite voxels become 0.

    Attributes:
        config: The resolved scheme config (see :func:`resolve_config`).
        offset: Grey value mapped to 0.
        scale: Grey-value step mapped to 1, > 0.
        measured: What the fit saw: ``n_sampled``, ``n_nonfinite``, ``low``, ``high``
            (percentile) and ``bytes_read``; empty for a global z-score.
    """

    config: dict[str, Any]
    offset: float
    scale: float
    measured: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not math.isfinite(self.offset) or not math.isfinite(self.scale) or self.scale <= 0:
            raise ValueError(
                f"normalization needs a finite offset and a positive scale, got "
                f"{self.offset}, {self.scale}"
            )

    @property
    def scheme(self) -> str:
        """``"percentile"`` or ``"global_zscore"``."""
        return str(self.config["scheme"])

    def __call__(self, image: Any) -> np.ndarray:
        """Normalize an array of any shape and real dtype; returns a new float32 array."""
        image = np.asarray(image)
        if image.dtype.kind not in "biuf":
            raise ValueError(f"image must have an integer or float dtype, got {image.dtype}")
        out = image.astype(np.float32, copy=True)
        out -= np.float32(self.offset)
        out /= np.float32(self.scale)
        if image.dtype.kind == "f":
            np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"config", "offset", "scale", "measured"}``."""
        return {
            "config": dict(self.config),
            "offset": self.offset,
            "scale": self.scale,
            "measured": dict(self.measured),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Normalization:
        """Inverse of :meth:`to_dict`."""
        measured = dict(d.get("measured") or {})
        return cls(resolve_config(d["config"]), float(d["offset"]), float(d["scale"]), measured)


def _grid(shape: tuple[int, ...], n_blocks: int) -> list[int]:
    """Cells per axis, about proportional to the shape, with a product close to ``n_blocks``.

    An axis shorter than a cell's edge gets one cell, and the edge is worked out again for the
    other axes, so a thin scan (3 x 10^4 x 10^4) still gets about ``n_blocks`` cells.
    """
    grid = [1] * len(shape)
    free = [i for i, s in enumerate(shape) if s > 1]
    while free:
        # Python ints: np.prod wraps around above 2^63 voxels (a corrupt header can claim that)
        side = (float(math.prod(shape[i] for i in free)) / n_blocks) ** (1 / len(free))
        thin = [i for i in free if shape[i] < side]
        if not thin:
            for i in free:
                grid[i] = max(1, min(shape[i], int(round(shape[i] / side))))
            break
        free = [i for i in free if i not in thin]
    return grid


def sample_voxels(
    scan: Any, n_blocks: int = SAMPLE_BLOCKS, block: int = SAMPLE_BLOCK, seed: int = 0
) -> np.ndarray:
    """A bounded, deterministic sample of a scan's voxels: small blocks on a jittered grid.

    The scan is divided into about ``n_blocks`` cells (a grid about proportional to its shape);
    one block of ``block``^3 voxels (less where a cell is smaller) is read from each cell at an
    offset drawn from ``seed``. A scan with no more than ``n_blocks * block**3`` voxels is read
    whole. Only the blocks are read (numpy, memmap and zarr slicing).

    Args:
        scan: (Z, Y, X) array-like of a real dtype with ``shape`` and slicing.
        n_blocks: About how many blocks, >= 1.
        block: Block edge in voxels, >= 1.
        seed: Seed of the offsets inside the cells (a constant: the sample depends on the
            scan's shape only).

    Returns:
        (n,) array of the sampled values, in the scan's dtype.

    Raises:
        ValueError: The scan is not 3D or has no voxels.
    """
    shape = tuple(int(s) for s in scan.shape)
    if len(shape) != 3:
        raise ValueError(f"scan must be 3D (Z, Y, X), got shape {shape}")
    if min(shape) < 1:
        raise ValueError(f"scan has no voxels (shape {shape})")
    if math.prod(shape) <= n_blocks * block**3:
        return np.asarray(scan[:, :, :]).ravel()
    rng = np.random.default_rng(seed)
    grid = _grid(shape, n_blocks)
    edges = [np.linspace(0, s, g + 1).astype(int) for s, g in zip(shape, grid, strict=True)]
    pieces = []
    for iz in range(grid[0]):
        for iy in range(grid[1]):
            for ix in range(grid[2]):
                sl = []
                for e, i in zip(edges, (iz, iy, ix), strict=True):
                    lo, hi = int(e[i]), int(e[i + 1])
                    size = min(block, hi - lo)
                    start = lo + int(rng.integers(0, hi - lo - size + 1))
                    sl.append(slice(start, start + size))
                pieces.append(np.asarray(scan[tuple(sl)]).ravel())
    return np.concatenate(pieces)


def fit_normalization(values: np.ndarray, config: Mapping[str, Any]) -> Normalization:
    """The scheme's map from a sample of grey values.

    ``percentile``: the ``lower`` and ``upper`` quantiles of the finite values are mapped to the
    config's ``values`` (default 0 and 1).
    ``global_zscore``: the config's mean and std (the sample is not used).

    Args:
        values: (n,) sampled grey values, any real dtype; NaN and inf are left out and counted.
        config: A scheme config (see :func:`resolve_config`).

    Returns:
        The fitted :class:`Normalization`.

    Raises:
        ValueError: All values are NaN/inf, fewer than ``MIN_SAMPLE_VOXELS`` are finite, or the
            values are constant (nothing to segment).
    """
    cfg = resolve_config(config)
    if cfg["scheme"] == "global_zscore":
        return Normalization(cfg, cfg["mean"], cfg["std"])
    values = np.asarray(values).ravel()
    if values.dtype.kind not in "biuf":
        raise ValueError(f"scan must have an integer or float dtype, got {values.dtype}")
    n = values.size
    if values.dtype.kind == "f":
        finite = values[np.isfinite(values)]
    else:
        finite = values
    n_bad = n - finite.size
    if n and n_bad == n:
        raise ValueError(f"all {n} sampled voxels are NaN or infinite: nothing to normalize")
    if finite.size < MIN_SAMPLE_VOXELS:
        raise ValueError(
            f"only {finite.size} finite voxels to estimate the intensity levels from (at least "
            f"{MIN_SAMPLE_VOXELS} needed): the scan is too small"
        )
    finite = finite.astype(np.float64, copy=False)
    low, high = np.quantile(finite, [cfg["lower"], cfg["upper"]])
    low, high = float(low), float(high)
    measured = {"n_sampled": int(n), "n_nonfinite": int(n_bad), "low": low, "high": high}
    if not high > low:  # a nearly constant scan (or very coarse quantization): use the extremes
        low, high = float(finite.min()), float(finite.max())
        measured["fallback"] = "min_max"
        if not high > low:
            raise ValueError(
                f"the scan is constant (every sampled voxel is {low:g}): nothing to segment"
            )
    v_lo, v_hi = cfg["values"]
    scale = (high - low) / (v_hi - v_lo)
    return Normalization(cfg, low - v_lo * scale, scale, measured)


def normalization_for_scan(scan: Any, config: Mapping[str, Any]) -> Normalization:
    """Sample a scan (:func:`sample_voxels`) and fit the scheme (:func:`fit_normalization`).

    Args:
        scan: (Z, Y, X) array-like (numpy, memmap, zarr).
        config: A scheme config; ``global_zscore`` reads nothing.

    Returns:
        The :class:`Normalization`, ``measured["bytes_read"]`` set for the percentile scheme.
    """
    cfg = resolve_config(config)
    if cfg["scheme"] == "global_zscore":
        return fit_normalization(np.zeros(0), cfg)
    values = sample_voxels(scan, cfg["n_blocks"], cfg["block"])
    norm = fit_normalization(values, cfg)
    return replace(norm, measured={**norm.measured, "bytes_read": int(values.nbytes)})


def legacy_config(intensity_stats: Mapping[str, Any]) -> dict[str, Any]:
    """The ``global_zscore`` config of a model that stored only ``intensity_stats``."""
    return resolve_config(
        {"scheme": "global_zscore", "mean": intensity_stats["mean"], "std": intensity_stats["std"]}
    )


def zscore_as_percentile(
    zscore: Mapping[str, Any], scans: Any, config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The per-scan scheme that puts each scan's levels where a global z-score put them.

    For a network trained with a global z-score: each scan's ``lower`` and ``upper`` levels are
    z-scored with ``zscore`` and averaged over ``scans`` (its training scans), and the percentile
    scheme maps the levels of any new scan to those two averages. On scans like the training
    ones the network input barely changes; a change of gain, offset or bit depth no longer moves
    it. Used to give a model trained before per-scan normalization the same invariance.

    Args:
        zscore: a ``global_zscore`` config (``mean``, ``std``).
        scans: iterable of (Z, Y, X) training scans.
        config: percentile knobs (``lower``, ``upper``, ``n_blocks``, ``block``).

    Returns:
        A resolved ``percentile`` config with ``values`` set.

    Raises:
        ValueError: no scans, or a config error.
    """
    z = resolve_config(zscore)
    if z["scheme"] != "global_zscore":
        raise ValueError(f"zscore_as_percentile needs a global_zscore config, got {z['scheme']}")
    cfg = resolve_config({**dict(config or {}), "scheme": "percentile"})
    levels = []
    for scan in scans:
        n = normalization_for_scan(scan, cfg)
        levels.append([n.measured["low"], n.measured["high"]])
    if not levels:
        raise ValueError("zscore_as_percentile needs at least one scan")
    low, high = (np.mean(levels, axis=0) - z["mean"]) / z["std"]
    return resolve_config({**cfg, "values": [float(low), float(high)]})
