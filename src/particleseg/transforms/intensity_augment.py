"""Intensity augmentations without an exact MONAI equivalent.

Gaussian noise with a sampled variance, and nnU-Net's contrast (around the mean, clipped to
the patch's range). Conventions: see :mod:`particleseg.transforms.augment`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.transforms import (
    MapTransform,
    RandomizableTransform,
)
from monai.utils import convert_to_tensor

from particleseg.transforms._checks import _check_prob, _check_range


class RandGaussianNoiseVarianced(RandomizableTransform, MapTransform):
    """Add zero-mean Gaussian noise whose *variance* is uniform in ``variance`` (nnU-Net).

    MONAI's ``RandGaussianNoised`` samples the standard deviation uniformly instead; here
    ``std = sqrt(uniform(*variance))``. The noise comes from a torch generator seeded by ``R``.

    Args:
        keys: Image keys.
        prob: Probability of adding noise.
        variance: (low, high) noise variance, ``0 <= low <= high``.
    """

    def __init__(
        self,
        keys: Hashable | Sequence[Hashable],
        prob: float = 0.1,
        variance: Sequence[float] = (0.0, 0.1),
    ) -> None:
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, _check_prob("prob", prob))
        self.variance = _check_range("variance", variance, low=0.0)
        self.std = 0.0
        self.seed = 0

    def randomize(self, data: Any = None) -> None:
        """Sample whether to add noise, its std and the generator seed."""
        super().randomize(None)
        if self._do_transform:
            self.std = math.sqrt(self.R.uniform(*self.variance))
            self.seed = int(self.R.randint(2**31 - 1))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Add noise to each key's float image (any shape); other keys pass through."""
        d = dict(data)
        self.randomize()
        if not self._do_transform:
            return d
        gen = torch.Generator().manual_seed(self.seed)
        for key in self.key_iterator(d):
            img = convert_to_tensor(d[key], track_meta=False, dtype=torch.float32)
            noise = torch.randn(img.shape, generator=gen, dtype=img.dtype)
            d[key] = img + noise * self.std
        return d


class RandContrastd(RandomizableTransform, MapTransform):
    """nnU-Net contrast: ``x = (x - mean) * f + mean``, clipped to the input's [min, max].

    Unlike MONAI's ``RandAdjustContrast`` (a gamma), this scales deviations from the patch mean
    by ``f`` uniform in ``factor_range`` and then clips to the patch's original range
    (nnU-Net's ``preserve_range``). Statistics are over the whole array, all channels.

    Args:
        keys: Image keys.
        prob: Probability of adjusting.
        factor_range: (low, high) contrast factors, ``0 < low <= high``.
    """

    def __init__(
        self,
        keys: Hashable | Sequence[Hashable],
        prob: float = 0.15,
        factor_range: Sequence[float] = (0.75, 1.25),
    ) -> None:
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, _check_prob("prob", prob))
        self.factor_range = _check_range("factor_range", factor_range, low=0.0, low_open=True)
        self.factor = 1.0

    def randomize(self, data: Any = None) -> None:
        """Sample whether to adjust and the factor."""
        super().randomize(None)
        if self._do_transform:
            self.factor = float(self.R.uniform(*self.factor_range))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Adjust each key's float image (any shape); other keys pass through."""
        d = dict(data)
        self.randomize()
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            img = convert_to_tensor(d[key], track_meta=False, dtype=torch.float32)
            lo, hi = torch.aminmax(img)
            mean = img.mean()
            out = (img - mean).mul_(self.factor).add_(mean)
            d[key] = out.clamp_(lo, hi)
        return d
