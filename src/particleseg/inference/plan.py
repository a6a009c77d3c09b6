"""Chunk plan of a whole-scan sliding window: every window computed once, chunks written alone.

The scan is resized to the network's grid (``network_shape``); one sliding window over that
grid (MONAI's: starts every ``patch * (1 - overlap)`` voxels, the last one clamped to the end, a
grid smaller than the patch padded symmetrically) is the reference. The plan cuts the padded
grid into chunk interiors of ``chunk_size`` voxels (at least one patch) and gives each window
to the chunk holding its start. A chunk computes its own windows only, so the number of forward
passes is exactly that of the plain sliding window. Its windows reach at most one patch past its
interior, into the next chunk along each axis; those parts ("spill pieces", one per direction
``d`` in {0, 1}^3 minus 0) are handed to that neighbour. A chunk's interior is final once its
own windows and the pieces of the up to 7 chunks before it (``c - d``) are summed, so each chunk
writes its own region of the outputs and nothing else.

Pure numpy; no torch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from particleseg.inference.settings import INFERENCE_DEFAULTS

DIRECTIONS = tuple(d for d in itertools.product((0, 1), repeat=3) if any(d))


def scan_interval(patch: int, overlap: float) -> int:
    """Step between window starts, as MONAI computes it: ``int(patch * (1 - overlap))`` or 1."""
    return max(int(patch * (1 - overlap)), 1)


def window_starts(n: int, patch: int, overlap: float) -> np.ndarray:
    """Window starts along one axis of length ``n`` (already padded to at least ``patch``).

    The same starts as ``monai.data.utils.dense_patch_slices``: multiples of the interval until a
    window reaches the end, the last one moved back to end exactly at ``n``.
    """
    if n < patch:
        raise ValueError(f"axis of length {n} is shorter than the patch {patch}; pad it first")
    step = scan_interval(patch, overlap) if n != patch else patch
    count = 1
    while (count - 1) * step + patch < n:
        count += 1
    starts = np.arange(count, dtype=np.int64) * step
    return np.minimum(starts, n - patch)


@dataclass(frozen=True)
class ChunkPlan:
    """Chunks of a sliding window over the network grid.

    Attributes:
        network_shape: (Z, Y, X) of the resized scan.
        patch: window size (z, y, x).
        overlap: window overlap fraction.
        chunk_size: interior size (z, y, x) of a chunk, in network voxels.
        pad: voxels of padding before the grid per axis (nonzero only on axes shorter than
            the patch, padded symmetrically as MONAI does).
        padded_shape: the grid the windows run over, ``max(network_shape, patch)``.
        starts: per axis, the window starts in padded coordinates.
        edges: per axis, the chunk boundaries in padded coordinates (0 ... padded length).
    """

    network_shape: tuple[int, int, int]
    patch: tuple[int, int, int]
    overlap: float
    chunk_size: tuple[int, int, int]
    pad: tuple[int, int, int]
    padded_shape: tuple[int, int, int]
    starts: tuple[np.ndarray, np.ndarray, np.ndarray]
    edges: tuple[np.ndarray, np.ndarray, np.ndarray]

    @property
    def grid(self) -> tuple[int, int, int]:
        """Number of chunks per axis."""
        return tuple(len(e) - 1 for e in self.edges)

    @property
    def n_chunks(self) -> int:
        """Number of chunks."""
        return math.prod(self.grid)

    @property
    def n_windows(self) -> int:
        """Windows of the plain sliding window over the whole grid (= forward passes)."""
        return math.prod(len(s) for s in self.starts)

    def position(self, c: int) -> tuple[int, int, int]:
        """Chunk index per axis of chunk ``c`` (raster order, x fastest)."""
        return tuple(int(i) for i in np.unravel_index(c, self.grid))

    def index(self, position: Sequence[int]) -> int | None:
        """Chunk number at ``position``, or None outside the grid."""
        if any(p < 0 or p >= g for p, g in zip(position, self.grid, strict=True)):
            return None
        return int(np.ravel_multi_index(tuple(position), self.grid))

    def interior(self, c: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(start, stop) of chunk ``c``'s interior, padded coordinates."""
        pos = self.position(c)
        start = tuple(int(e[p]) for e, p in zip(self.edges, pos, strict=True))
        stop = tuple(int(e[p + 1]) for e, p in zip(self.edges, pos, strict=True))
        return start, stop

    def _axis_windows(self, axis: int, p: int) -> np.ndarray:
        s, e = self.edges[axis][p], self.edges[axis][p + 1]
        starts = self.starts[axis]
        return starts[(starts >= s) & (starts < e)]

    def windows(self, c: int) -> np.ndarray:
        """Starts (N, 3) of the windows chunk ``c`` computes, padded coordinates, raster order."""
        per_axis = [self._axis_windows(a, p) for a, p in enumerate(self.position(c))]
        if any(len(w) == 0 for w in per_axis):
            return np.zeros((0, 3), np.int64)
        mesh = np.meshgrid(*per_axis, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    def extent(self, c: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(start, stop) of the region chunk ``c``'s windows cover (interior plus spill)."""
        start, stop = self.interior(c)
        end = []
        for a, p in enumerate(self.position(c)):
            w = self._axis_windows(a, p)
            end.append(max(stop[a], int(w.max()) + self.patch[a]) if len(w) else stop[a])
        return start, tuple(end)

    def piece(self, c: int, d: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """Region (padded coordinates) of chunk ``c``'s spill toward ``c + d``, None if empty."""
        (i0, i1), (_, e) = self.interior(c), self.extent(c)
        start = tuple(i1[a] if d[a] else i0[a] for a in range(3))
        stop = tuple(e[a] if d[a] else i1[a] for a in range(3))
        if any(b <= a for a, b in zip(start, stop, strict=True)):
            return None
        return start, stop

    def contributors(self, c: int) -> list[tuple[int, tuple[int, int, int]]]:
        """``(n, d)`` for every chunk ``n = c - d`` whose windows spill into chunk ``c``."""
        pos = self.position(c)
        out = []
        for d in DIRECTIONS:
            n = self.index([p - o for p, o in zip(pos, d, strict=True)])
            if n is not None and self.piece(n, d) is not None:
                out.append((n, d))
        return out

    def unpadded(
        self, start: Sequence[int], stop: Sequence[int]
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """A padded-coordinate region clipped to the network grid, in its coordinates."""
        lo = tuple(
            min(max(s - p, 0), n)
            for s, p, n in zip(start, self.pad, self.network_shape, strict=True)
        )
        hi = tuple(
            min(max(s - p, 0), n)
            for s, p, n in zip(stop, self.pad, self.network_shape, strict=True)
        )
        return lo, hi


def plan_chunks(
    network_shape: Sequence[int],
    patch: Sequence[int],
    chunk_size: int | Sequence[int],
    overlap: float = INFERENCE_DEFAULTS["overlap"],
) -> ChunkPlan:
    """Plan the chunks of a sliding window over ``network_shape``.

    Args:
        network_shape: (Z, Y, X) of the resized scan.
        patch: window size (z, y, x).
        chunk_size: chunk interior per axis (or one int), rounded up to a multiple of the
            window step and to at least the patch, so that windows spill into the next chunk
            only.
        overlap: window overlap fraction in [0, 1).

    Returns:
        The plan.

    Raises:
        ValueError: a shape, patch or chunk size that is not 3 positive ints, or a bad overlap.
    """
    shape = _three_ints(network_shape, "network_shape")
    patch = _three_ints(patch, "patch")
    size = _three_ints([chunk_size] * 3 if np.isscalar(chunk_size) else chunk_size, "chunk_size")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    padded = tuple(max(n, p) for n, p in zip(shape, patch, strict=True))
    pad = tuple((q - n) // 2 for q, n in zip(padded, shape, strict=True))
    starts = tuple(window_starts(q, p, overlap) for q, p in zip(padded, patch, strict=True))
    edges = []
    chunk = []
    for q, p, s in zip(padded, patch, size, strict=True):
        step = scan_interval(p, overlap)
        length = max(math.ceil(s / step) * step, p)
        chunk.append(length)
        edges.append(np.append(np.arange(0, q, length, dtype=np.int64), q))
    return ChunkPlan(shape, patch, float(overlap), tuple(chunk), pad, padded, starts, tuple(edges))


def _three_ints(value, what: str) -> tuple[int, int, int]:
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or any(v < 1 for v in out) or any(int(v) != v for v in value):
        raise ValueError(f"{what} must be 3 positive ints (Z, Y, X), got {value!r}")
    return out
