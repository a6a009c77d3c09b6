"""Tiny synthetic volumes and scribbles for the annotation tests."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def balls(shape, centres, radii, dtype=np.uint32):
    """Instance labels of balls (later ones painted over earlier ones), ids 1..N."""
    labels = np.zeros(shape, dtype=dtype)
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    for i, (c, r) in enumerate(zip(centres, radii, strict=True), start=1):
        d2 = sum((g - ci) ** 2 for g, ci in zip(grid, c, strict=True))
        labels[d2 <= r * r] = i
    return labels


def two_phase(labels, brightness=None, noise=0.25, blur=1.0, seed=0):
    """CT-like float32 image: particles brighter than resin, blurred, with Gaussian noise.

    ``brightness``: per-particle intensity (default 1.0 each); resin is 0.
    """
    rng = np.random.default_rng(seed)
    lut = np.zeros(int(labels.max()) + 1, np.float32)
    lut[1:] = 1.0 if brightness is None else brightness
    image = ndi.gaussian_filter(lut[labels], blur)
    return (image + rng.normal(0, noise, labels.shape)).astype(np.float32)


def random_balls(shape, n, r_range, seed=0):
    """Labels of up to ``n`` non-overlapping balls at random places."""
    rng = np.random.default_rng(seed)
    centres, radii = [], []
    for _ in range(n * 20):
        r = rng.uniform(*r_range)
        c = [rng.uniform(r, s - r) for s in shape]
        if all(
            np.linalg.norm(np.subtract(c, c2)) > r + r2 + 2
            for c2, r2 in zip(centres, radii, strict=True)
        ):
            centres.append(c)
            radii.append(r)
        if len(centres) == n:
            break
    return balls(shape, centres, radii)


def stripe_scribbles(truth, slices, every=6, erode=2, region=None, every_bg=None, band=None):
    """Scribbles a user might paint: rows of a few slices.

    Class 1 on every ``every``-th row of the particles eroded by ``erode``; class 2 on every
    ``every_bg``-th row (default ``every``) of the background eroded by ``erode`` or, with
    ``band``, of the background within ``band`` voxels of a particle (strokes along the edges,
    as a user paints to fix the boundary). ``region`` (bool) restricts both.
    """
    fg = ndi.binary_erosion(truth, iterations=erode) if erode else truth
    if band is None:
        bg = ndi.binary_erosion(~truth, iterations=erode, border_value=1) if erode else ~truth
    else:
        bg = ~truth & (ndi.distance_transform_edt(~truth) <= band)
    scribbles = np.zeros(truth.shape, np.uint8)
    for step, where, value in ((every, fg, 1), (every_bg or every, bg, 2)):
        rows = np.zeros(truth.shape, bool)
        rows[np.asarray(slices)[:, None], ::step, :] = True
        if region is not None:
            rows &= region
        scribbles[rows & where] = value
    return scribbles


def dice(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 2.0 * (a & b).sum() / max(a.sum() + b.sum(), 1)


def iou(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return (a & b).sum() / max((a | b).sum(), 1)


def touching_pair(r=12, gap=1.6, pad=4, extra=True):
    """Two overlapping balls merged into id 1 (+ a separate ball id 2 if ``extra``).

    Returns ``(labels, truth_a, truth_b, centre_a, centre_b, contact_x)``: the truth splits the
    union at the plane x = contact_x half-way between the centres.
    """
    d = int(round(gap * r))
    shape = (2 * r + 2 * pad, 2 * r + 2 * pad, 2 * r + d + 2 * pad + (2 * r + 4 if extra else 0))
    ca = (r + pad, r + pad, r + pad)
    cb = (r + pad, r + pad, r + pad + d)
    union = balls(shape, [ca, cb], [r, r]) > 0
    labels = union.astype(np.uint32)
    if extra:
        other = balls(shape, [(r + pad, r + pad, 3 * r + d + pad + 2)], [r]) > 0
        labels[other & ~union] = 2
    contact = (ca[2] + cb[2]) / 2.0
    x = np.arange(shape[2])[None, None, :]
    truth_a = union & (x < contact)
    truth_b = union & (x >= contact)
    return labels, truth_a, truth_b, ca, cb, contact
