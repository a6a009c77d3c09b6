"""Connected components of a 3D volume by runs, compiled with numba; numbered as cc3d numbers them.

``cc3d.connected_components`` gives the same labels, but it runs on one core, it needs a
boolean copy of the volume to label one value, and it allocates a union-find table sized for
the worst case (half the voxels: 268 MB at 512^3) that it touches page by page. Here the
foreground of each row is a list of runs, the runs of neighbouring rows that touch are joined
in a union-find over runs (a few million at 512^3), and the runs are written out once:
two reads of the volume and one write of the labels, parallel over rows and Z chunks.

Components are numbered 1..N in the raster order of their first voxel, as cc3d does, so the
two are interchangeable (the tests compare them voxel for voxel).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _is_on(v, value, any_nonzero):
    return v != 0 if any_nonzero else v == value


@numba.njit(cache=True, parallel=True)
def _count_runs(volume, value, any_nonzero):
    """(Z * Y + 1,) int64: 0, then the number of foreground runs of each row."""
    nz, ny, nx = volume.shape
    counts = np.zeros(nz * ny + 1, np.int64)
    for r in numba.prange(nz * ny):
        z = r // ny
        y = r % ny
        c = 0
        prev = False
        for x in range(nx):
            on = _is_on(volume[z, y, x], value, any_nonzero)
            if on and not prev:
                c += 1
            prev = on
        counts[r + 1] = c
    return counts


@numba.njit(cache=True, parallel=True)
def _fill_runs(volume, value, any_nonzero, start, lo, hi):
    """Runs of row r are ``start[r]:start[r + 1]``; run k covers x in ``lo[k]:hi[k]``."""
    nz, ny, nx = volume.shape
    for r in numba.prange(nz * ny):
        z = r // ny
        y = r % ny
        k = start[r]
        prev = False
        for x in range(nx):
            on = _is_on(volume[z, y, x], value, any_nonzero)
            if on and not prev:
                lo[k] = x
            elif prev and not on:
                hi[k] = x
                k += 1
            prev = on
        if prev:
            hi[k] = nx


@numba.njit(cache=True, inline="always")
def _find(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]  # path halving; parents only ever point to smaller runs
        a = parent[a]
    return a


@numba.njit(cache=True, inline="always")
def _join_rows(parent, lo, hi, a0, a1, b0, b1, reach):
    """Join the touching runs of two rows: runs ``a0:a1`` and ``b0:b1``.

    Two runs touch when their x ranges overlap, or, with ``reach`` 1, are diagonal neighbours.
    The root of a set is its smallest run, so it is the set's first run in raster order.
    """
    i = a0
    j = b0
    while i < a1 and j < b1:
        if lo[j] < hi[i] + reach and lo[i] < hi[j] + reach:
            ra = _find(parent, i)
            rb = _find(parent, j)
            if ra < rb:
                parent[rb] = ra
            elif rb < ra:
                parent[ra] = rb
        if hi[i] < hi[j]:
            i += 1
        else:
            j += 1


@numba.njit(cache=True, inline="always")
def _join_row(parent, lo, hi, start, ny, z, y, connectivity, in_plane, across):
    """Join the runs of row (z, y) with those of the earlier rows it may touch.

    6: (z, y-1) and (z-1, y), overlapping x. 18: also diagonal in x on those two rows, and
    (z-1, y +- 1) overlapping x. 26: all of these diagonal in x as well.
    """
    r = z * ny + y
    a0 = start[r]
    a1 = start[r + 1]
    if a0 == a1:
        return
    reach = 1 if connectivity >= 18 else 0
    if in_plane and y > 0:
        _join_rows(parent, lo, hi, a0, a1, start[r - 1], start[r], reach)
    if across and z > 0:
        q = r - ny
        _join_rows(parent, lo, hi, a0, a1, start[q], start[q + 1], reach)
        if connectivity >= 18:
            corner = 1 if connectivity == 26 else 0
            if y > 0:
                _join_rows(parent, lo, hi, a0, a1, start[q - 1], start[q], corner)
            if y + 1 < ny:
                _join_rows(parent, lo, hi, a0, a1, start[q + 1], start[q + 2], corner)


@numba.njit(cache=True, parallel=True)
def _join_all(lo, hi, start, nz, ny, connectivity, n_chunks):
    """(K,) int64 union-find parents of the K runs, after joining every touching pair.

    Each chunk of Z planes joins its own runs (a contiguous range, so threads never write the
    same entry); the first plane of each chunk is joined to the plane before it afterwards.
    """
    parent = np.arange(lo.size)
    for c in numba.prange(n_chunks):
        z0 = c * nz // n_chunks
        for z in range(z0, (c + 1) * nz // n_chunks):
            for y in range(ny):
                _join_row(parent, lo, hi, start, ny, z, y, connectivity, True, z > z0)
    for c in range(1, n_chunks):
        z = c * nz // n_chunks
        for y in range(ny):
            _join_row(parent, lo, hi, start, ny, z, y, connectivity, False, True)
    return parent


@numba.njit(cache=True)
def _number_sets(parent):
    """(K,) uint32 component of each run, 1..N by first run, and N."""
    label = np.empty(parent.size, np.uint32)
    n = 0
    for i in range(parent.size):
        p = parent[i]
        if p == i:
            n += 1
            label[i] = n
        else:
            label[i] = label[p]  # p < i and shares i's root, so it is numbered already
    return label, n


@numba.njit(cache=True, parallel=True)
def _write_runs(out, run_label, lo, hi, start):
    nz, ny, nx = out.shape
    for r in numba.prange(nz * ny):
        z = r // ny
        y = r % ny
        x = 0
        for k in range(start[r], start[r + 1]):
            for xx in range(x, lo[k]):
                out[z, y, xx] = 0
            v = run_label[k]
            for xx in range(lo[k], hi[k]):
                out[z, y, xx] = v
            x = hi[k]
        for xx in range(x, nx):
            out[z, y, xx] = 0


def label_components(
    volume: np.ndarray, value: int | None = None, connectivity: int = 6
) -> tuple[np.ndarray, int]:
    """Connected components of the voxels equal to ``value`` (or of all non-zero voxels).

    Args:
        volume: (Z, Y, X) integer or bool array.
        value: label the voxels equal to it; None labels every non-zero voxel as one class.
        connectivity: 6, 18 or 26.

    Returns:
        (Z, Y, X) uint32 labels, 1..N in the raster order of each component's first voxel
        (0 elsewhere), and N.
    """
    if connectivity not in (6, 18, 26):
        raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    volume = np.ascontiguousarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3D (Z, Y, X), got shape {volume.shape}")
    if volume.dtype == bool:
        volume = volume.view(np.uint8)
        value = None if value is None else int(bool(value))
    nz, ny, _ = volume.shape
    scalar = volume.dtype.type(0 if value is None else value)
    start = np.cumsum(_count_runs(volume, scalar, value is None))
    n_runs = int(start[-1])
    lo = np.empty(n_runs, np.int32)
    hi = np.empty(n_runs, np.int32)
    _fill_runs(volume, scalar, value is None, start, lo, hi)
    n_chunks = max(1, min(nz, 4 * numba.get_num_threads()))
    parent = _join_all(lo, hi, start, nz, ny, connectivity, n_chunks)
    run_label, n = _number_sets(parent)
    del parent
    out = np.empty(volume.shape, np.uint32)
    _write_runs(out, run_label, lo, hi, start)
    return out, int(n)
