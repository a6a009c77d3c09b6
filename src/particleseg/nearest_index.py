"""The nearest-exact index rule of every label resize (pure numpy; no torch).

The in-memory resize (:mod:`particleseg.transforms.resize`), the out-of-core resampling
(:mod:`particleseg.postprocess.resample`), data preparation and tuning all map an output index to
its source index with :func:`nearest_source_index`, so their labels agree voxel for voxel.
"""

from __future__ import annotations

import numpy as np


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def nearest_source_index(
    n_in: int, n_out: int, start: int = 0, stop: int | None = None
) -> np.ndarray:
    """Source index of output indices ``start..stop-1``, rule ``floor((i + 0.5) * in / out)``.

    The nearest-exact rule of ``interpolate(mode="nearest-exact")``, in exact integer
    arithmetic: ``((2 i + 1) in) // (2 out)``, at most ``in - 1``. Only the requested range is
    computed; it is non-decreasing in ``i``, so a range of outputs reads the source range
    ``[index[0], index[-1] + 1)``.

    Args:
        n_in: input length along the axis, >= 1.
        n_out: output length along the axis, >= 1.
        start: first output index, ``0 <= start <= stop``.
        stop: end (exclusive) of the output range, at most ``n_out``; default ``n_out``.

    Returns:
        (stop - start,) int64 source indices in ``[0, n_in)``.

    Raises:
        ValueError: a length is not a positive int, or the range not within ``[0, n_out]``.
    """
    if stop is None:
        stop = n_out
    if not (_is_int(n_in) and _is_int(n_out) and n_in >= 1 and n_out >= 1):
        raise ValueError(f"n_in and n_out must be positive ints, got {n_in!r} and {n_out!r}")
    if not (_is_int(start) and _is_int(stop) and 0 <= start <= stop <= n_out):
        raise ValueError(
            f"need ints 0 <= start <= stop <= n_out = {n_out}, got start {start!r}, stop {stop!r}"
        )
    i = np.arange(int(start), int(stop), dtype=np.int64)
    return np.minimum(((2 * i + 1) * int(n_in)) // (2 * int(n_out)), int(n_in) - 1)
