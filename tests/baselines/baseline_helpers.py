"""Shared helpers of the baseline tests: bright balls on a dark background with exact labels."""

import numpy as np
from scipy import ndimage as ndi


def render(centers, radii, *, shape, noise=0.08, gain=1.0, offset=0.0, seed=0):
    """Bright balls on a dark background: returns (float32 image, uint32 labels).

    Overlapping balls are split by the nearest normalized distance |x - c| / r (a neck where
    they overlap); the image is the blurred union mask plus Gaussian noise.
    """
    grid = np.indices(shape, dtype=np.float32)
    norm = np.stack(
        [
            np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, center, strict=True))) / r
            for center, r in zip(centers, radii, strict=True)
        ]
    )
    labels = (np.argmin(norm, axis=0) + 1).astype(np.uint32)
    labels[norm.min(axis=0) > 1] = 0
    clean = ndi.gaussian_filter((labels > 0).astype(np.float32), 0.7)
    rng = np.random.default_rng(seed)
    image = 0.2 + 0.6 * clean + rng.normal(0, noise, shape).astype(np.float32)
    return (gain * image + offset).astype(np.float32), labels
