"""nnU-Net v2's default training augmentation as a MONAI ``Compose`` of dict transforms.

The pipeline (:func:`nnunet_augmentation`) runs, in nnU-Net v2's order:

    1. rotation + isotropic scaling in one resampling that also centre-crops to ``patch_size``
       (:class:`RandRotateScaleCropd`: MONAI ``Resample`` for the image, an exact integer gather
       for the label), or a plain centre crop when neither is sampled;
    2. Gaussian noise with a uniformly sampled *variance* (:class:`RandGaussianNoiseVarianced`);
    3. Gaussian blur (MONAI ``RandGaussianSmoothd``);
    4. multiplicative brightness (MONAI ``RandScaleIntensityd``);
    5. contrast around the mean, clipped to the patch's range (:class:`RandContrastd`);
    6. low-resolution simulation (MONAI ``RandSimulateLowResolutiond``);
    7. gamma on the inverted image, then gamma (MONAI ``RandAdjustContrastd`` with
       ``retain_stats=True``);
    8. mirroring per axis (MONAI ``RandFlipd``).

Conventions:
    * Data are dicts of channel-first arrays: image (C, Z, Y, X) of any real dtype (usually
      C = 1), label (1, Z, Y, X) of small non-negative integer class indices (the border-core map:
      0 background, 1 core, 2 border). Both may be numpy arrays, torch tensors or MONAI
      MetaTensors and must share their spatial shape, which must be >= ``patch_size``.
    * Output: the image as a plain float32 ``torch.Tensor`` (C, *patch_size) and the label as a
      plain **uint8** ``torch.Tensor`` (1, *patch_size) holding only values present in the input
      label (nearest-neighbour resampling never interpolates classes). Call ``.long()`` before a
      loss that needs int64. Keys other than the image and label pass through untouched.
    * The centre of the output patch is voxel ``(S - P) // 2 + (P - 1) / 2`` of the input (S:
      input size, P: patch size, per axis), the same in the crop-only fast path and the
      resampling path, so switching between the two never shifts the patch.
    * Scale factor ``s > 1`` zooms **in** (content gets ``s`` times bigger, the patch shows
      ``1 / s`` of the field of view); ``s < 1`` zooms out and needs more context, see
      :func:`initial_patch_size`.
    * Resampling pads with the nearest border value (``padding_mode="border"``) for the image
      and the label alike; with an input of :func:`initial_patch_size` no output voxel needs it.
    * Intensity statistics (mean, std, min, max) are over the whole image patch, all channels.
    * Randomness comes only from each transform's ``R`` (numpy ``RandomState``), so
      ``Compose.set_random_state(seed)`` makes the pipeline reproducible. In a multi-process
      DataLoader, reseed per worker (``monai.data.DataLoader`` does this).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.transforms import (
    Compose,
    MapTransform,
    RandAdjustContrastd,
    RandFlipd,
    RandGaussianSmoothd,
    Randomizable,
    RandomizableTransform,
    RandScaleIntensityd,
    RandSimulateLowResolutiond,
    Resample,
    ToTensord,
)
from monai.utils import convert_to_tensor

__all__ = [
    "NnUNetAugmentation",
    "RandContrastd",
    "RandGaussianNoiseVarianced",
    "RandRotateScaleCropd",
    "initial_patch_size",
    "nnunet_augmentation",
    "rotation_matrix",
]


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def _check_patch_size(patch_size: Sequence[int]) -> tuple[int, int, int]:
    """Return ``patch_size`` as three positive ints or raise ValueError."""
    try:
        size = tuple(int(s) for s in patch_size)
    except TypeError as err:
        raise ValueError(
            f"patch_size must be 3 positive ints (Z, Y, X), got {patch_size!r}"
        ) from err
    if (
        len(size) != 3
        or any(s < 1 for s in size)
        or any(s != p for s, p in zip(size, patch_size, strict=True))
    ):
        raise ValueError(f"patch_size must be 3 positive ints (Z, Y, X), got {patch_size!r}")
    return size  # type: ignore[return-value]


def _check_prob(name: str, p: float) -> float:
    """Return ``p`` as float or raise ValueError if it is outside [0, 1]."""
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    return p


def _check_range(
    name: str,
    value: Sequence[float],
    *,
    low: float | None = None,
    low_open: bool = False,
    high: float | None = None,
) -> tuple[float, float]:
    """Return a ``(lo, hi)`` range as floats, checking ``lo <= hi`` and the allowed bounds.

    Args:
        name: Argument name for error messages.
        value: The range.
        low: Smallest allowed ``lo`` (inclusive unless ``low_open``); None for no bound.
        low_open: Require ``lo > low`` instead of ``lo >= low``.
        high: Largest allowed ``hi`` (inclusive); None for no bound.

    Returns:
        ``(lo, hi)`` as floats.

    Raises:
        ValueError: If ``value`` is not two finite numbers with ``lo <= hi`` inside the bounds.
    """
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from err
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if lo > hi:
        raise ValueError(f"{name} must be (low, high) with low <= high, got {value!r}")
    if low is not None and (lo <= low if low_open else lo < low):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name} must have low {bound}, got {value!r}")
    if high is not None and hi > high:
        raise ValueError(f"{name} must have high <= {high}, got {value!r}")
    return lo, hi


def _check_pair(
    data: Mapping[Hashable, Any],
    image_key: Hashable,
    label_key: Hashable,
    patch_size: tuple[int, int, int],
) -> None:
    """Check that ``data`` holds a channel-first image and label at least ``patch_size`` big.

    Raises:
        ValueError: If a key is missing, a shape is not channel-first 3D, the label has more
            than one channel, the spatial shapes differ, or they are smaller than the patch.
    """
    for key in (image_key, label_key):
        if key not in data:
            raise ValueError(f"data has no key {key!r} (keys: {list(data)})")
    image_shape = tuple(data[image_key].shape)
    label_shape = tuple(data[label_key].shape)
    if len(image_shape) != 4:
        raise ValueError(f"image must be channel-first (C, Z, Y, X), got shape {image_shape}")
    if len(label_shape) != 4 or label_shape[0] != 1:
        raise ValueError(f"label must be (1, Z, Y, X), got shape {label_shape}")
    if image_shape[1:] != label_shape[1:]:
        raise ValueError(
            f"image and label spatial shapes differ: {image_shape[1:]} vs {label_shape[1:]}"
        )
    if any(s < p for s, p in zip(image_shape[1:], patch_size, strict=True)):
        raise ValueError(
            f"input spatial shape {image_shape[1:]} is smaller than patch_size {patch_size}; "
            f"crop at least patch_size (better initial_patch_size(...)) before augmenting"
        )


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


def _axis_rotation(axis: int, angle: float) -> np.ndarray:
    """3x3 rotation by ``angle`` (radians) in the plane of the two axes other than ``axis``."""
    b, c = [a for a in range(3) if a != axis]
    rot = np.eye(3)
    cos, sin = math.cos(angle), math.sin(angle)
    rot[b, b], rot[b, c], rot[c, b], rot[c, c] = cos, -sin, sin, cos
    return rot


def rotation_matrix(angles: Sequence[float]) -> np.ndarray:
    """Rotation ``R = R_0(a0) @ R_1(a1) @ R_2(a2)`` in (Z, Y, X) index space.

    Args:
        angles: Three angles in radians; ``angles[k]`` rotates about array axis ``k``.

    Returns:
        float64 array (3, 3), orthonormal with determinant 1.
    """
    a0, a1, a2 = (float(a) for a in angles)
    return _axis_rotation(0, a0) @ _axis_rotation(1, a1) @ _axis_rotation(2, a2)


def _max_rotated_extent(u: float, v: float, max_angle: float) -> float:
    """Largest ``u |cos a| + v |sin a|`` over ``|a| <= max_angle`` (radians, clipped to pi/2)."""
    max_angle = min(abs(max_angle), math.pi / 2)
    best = math.atan2(v, u)  # the unconstrained maximiser, value hypot(u, v)
    if best <= max_angle:
        return math.hypot(u, v)
    return u * math.cos(max_angle) + v * math.sin(max_angle)


def initial_patch_size(
    patch_size: Sequence[int],
    rotation_deg: float = 30.0,
    scale_range: Sequence[float] = (0.7, 1.4),
) -> tuple[int, int, int]:
    """Input crop size that keeps the augmented ``patch_size`` output inside real data.

    The output patch is a box of size P (per axis, voxel centres spanning ``P - 1``) rotated by
    ``R = R_0 R_1 R_2`` with every angle in ``[-rotation_deg, rotation_deg]`` and scaled by
    ``1 / s`` in input space. The extent ``E_i`` of the rotated box along axis ``i`` is bounded
    two ways, and the smaller bound is used:

    * per-axis propagation in the order the factors act (``R_2`` first): a rotation by at most
      ``t`` in the plane of axes (b, c) maps a box (e_b, e_c) into one of size
      ``max_|a|<=t (e_b |cos a| + e_c |sin a|)`` along b (and symmetrically along c); this is
      ``hypot(e_b, e_c)`` once ``t`` reaches ``atan2(e_c, e_b)``, else
      ``e_b cos t + e_c sin t``;
    * the patch diagonal ``|P|``, which no rotation can exceed along any axis.

    Then ``initial_i = max(P_i, ceil(E_i / min(1, s_min)))``: the smallest scale factor (zoom out)
    shows the most context. Using ``P`` rather than ``P - 1`` leaves one voxel of margin for
    interpolation.

    Args:
        patch_size: Output patch size (Z, Y, X).
        rotation_deg: Largest absolute rotation angle per axis, degrees, >= 0.
        scale_range: (low, high) isotropic scale factors, ``0 < low <= high``.

    Returns:
        Three ints (Z, Y, X), each >= the matching ``patch_size``.

    Raises:
        ValueError: If ``patch_size``, ``rotation_deg`` or ``scale_range`` is invalid.
    """
    size = _check_patch_size(patch_size)
    rotation_deg = float(rotation_deg)
    if not (math.isfinite(rotation_deg) and rotation_deg >= 0):
        raise ValueError(f"rotation_deg must be a finite angle >= 0, got {rotation_deg}")
    s_min, _ = _check_range("scale_range", scale_range, low=0.0, low_open=True)
    t = math.radians(rotation_deg)
    ext = [float(s) for s in size]
    if t > 0:
        for axis in (2, 1, 0):  # R = R_0 R_1 R_2 applies R_2 first
            b, c = [a for a in range(3) if a != axis]
            ext[b], ext[c] = (
                _max_rotated_extent(ext[b], ext[c], t),
                _max_rotated_extent(ext[c], ext[b], t),
            )
    diagonal = math.sqrt(sum(s * s for s in size))
    zoom_out = min(1.0, s_min)
    return tuple(  # type: ignore[return-value]
        max(p, math.ceil(min(e, diagonal) / zoom_out - 1e-6))
        for p, e in zip(size, ext, strict=True)
    )


# --------------------------------------------------------------------------------------------
# Transforms
# --------------------------------------------------------------------------------------------


def _sample_nearest(label: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour sampling with border clamping by integer gather (no float round trip).

    Equivalent to MONAI ``Resample(mode="nearest", padding_mode="border")`` (``grid_sample``
    rounds half to even, as ``torch.round`` does) but works on any dtype, keeps it, and is
    several times faster on CPU.

    Args:
        label: (C, Z, Y, X), any dtype.
        grid: (3, *out_shape) float, MONAI's centred input coordinates.

    Returns:
        (C, *out_shape) tensor of ``label``'s dtype.
    """
    spatial = label.shape[1:]
    # int32 flat indices are exact below 2**31 voxels and much cheaper to build than int64.
    index_dtype = torch.int32 if math.prod(spatial) < 2**31 else torch.int64
    flat = torch.zeros(grid.shape[1:], dtype=index_dtype)
    for i, size in enumerate(spatial):
        index = torch.round(grid[i] + (size - 1) / 2).clamp_(0, size - 1).to(index_dtype)
        flat.mul_(size).add_(index)
    return label.reshape(label.shape[0], -1)[:, flat.reshape(-1)].reshape(
        (label.shape[0], *grid.shape[1:])
    )


class RandRotateScaleCropd(Randomizable, MapTransform):
    """Random rotation and isotropic scaling, resampled once to a centred ``patch_size`` crop.

    Rotation (probability ``rotation_p``; each of the three angles uniform in
    ``+-rotation_deg``) and scaling (probability ``scale_p``; one factor uniform in
    ``scale_range``, ``> 1`` zooms in) are sampled independently. If either is sampled, the
    output voxel at centred coordinate ``o`` samples the input at ``R @ o / s + c`` (``c``: the
    patch centre, see the module docstring): trilinear for the image with MONAI ``Resample``,
    nearest for the label by an integer gather equivalent to ``Resample(mode="nearest")``; both
    clamp to the border. Otherwise the patch is a plain centre crop (copied,
    exact).

    Args:
        keys: ``(image_key, label_key)``.
        patch_size: Output spatial size (Z, Y, X).
        rotation_p: Probability of rotating.
        rotation_deg: Largest absolute angle per axis, degrees.
        scale_p: Probability of scaling.
        scale_range: (low, high) scale factors, ``0 < low <= high``.

    Raises:
        ValueError: On invalid arguments, and at call time on inputs that fail
            the shape checks (see :func:`nnunet_augmentation`).
    """

    def __init__(
        self,
        keys: Sequence[Hashable],
        patch_size: Sequence[int],
        rotation_p: float = 0.2,
        rotation_deg: float = 30.0,
        scale_p: float = 0.2,
        scale_range: Sequence[float] = (0.7, 1.4),
    ) -> None:
        keys = list(keys)
        if len(keys) != 2:
            raise ValueError(f"keys must be (image_key, label_key), got {keys!r}")
        MapTransform.__init__(self, keys)
        self.image_key, self.label_key = keys
        self.patch_size = _check_patch_size(patch_size)
        self.rotation_p = _check_prob("rotation_p", rotation_p)
        self.scale_p = _check_prob("scale_p", scale_p)
        self.rotation_deg = float(rotation_deg)
        if not (math.isfinite(self.rotation_deg) and self.rotation_deg >= 0):
            raise ValueError(f"rotation_deg must be a finite angle >= 0, got {rotation_deg}")
        self.scale_range = _check_range("scale_range", scale_range, low=0.0, low_open=True)
        self.angles: np.ndarray | None = None
        self.scale: float | None = None
        self._resample_image = Resample(mode="bilinear", padding_mode="border", dtype=torch.float32)

    def randomize(self, data: Any = None) -> None:
        """Sample whether to rotate/scale and the angles (radians) and factor."""
        t = math.radians(self.rotation_deg)
        rotate = self.R.rand() < self.rotation_p
        self.angles = self.R.uniform(-t, t, size=3) if rotate else None
        scale = self.R.rand() < self.scale_p
        self.scale = float(self.R.uniform(*self.scale_range)) if scale else None

    def sampling_matrix(self) -> np.ndarray | None:
        """The 3x3 output-to-input matrix ``R / s`` of the last sample, None for a plain crop."""
        if self.angles is None and self.scale is None:
            return None
        rot = np.eye(3) if self.angles is None else rotation_matrix(self.angles)
        return rot / (1.0 if self.scale is None else self.scale)

    def _grid(self, in_shape: tuple[int, ...], matrix: np.ndarray) -> torch.Tensor:
        """Sampling grid (3, *patch_size), float32, in MONAI's centred input coordinates."""
        # Offset of the crop centre from the input centre (MONAI's origin): 0 or -0.5 per axis.
        shift = [
            (s - p) // 2 + (p - 1) / 2 - (s - 1) / 2
            for s, p in zip(in_shape, self.patch_size, strict=True)
        ]
        coords = [torch.arange(p, dtype=torch.float32) - (p - 1) / 2 for p in self.patch_size]
        views = [
            coords[0].view(-1, 1, 1),
            coords[1].view(1, -1, 1),
            coords[2].view(1, 1, -1),
        ]
        grid = torch.empty((3, *self.patch_size), dtype=torch.float32)
        m = matrix.astype(np.float32)
        for i in range(3):
            grid[i] = views[0] * float(m[i, 0]) + views[1] * float(m[i, 1])
            grid[i] += views[2] * float(m[i, 2]) + float(shift[i])
        return grid

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Rotate/scale and crop the image and label of ``data``.

        Args:
            data: Dict with image (C, Z, Y, X) and label (1, Z, Y, X), spatial shape >=
                ``patch_size``.

        Returns:
            A new dict: image float32 (C, *patch_size), label uint8 (1, *patch_size), both plain
            torch tensors; other keys as given.
        """
        _check_pair(data, self.image_key, self.label_key, self.patch_size)
        d = dict(data)
        image = convert_to_tensor(d[self.image_key], track_meta=False)
        label = convert_to_tensor(d[self.label_key], track_meta=False)
        self.randomize()
        matrix = self.sampling_matrix()
        in_shape = tuple(image.shape[1:])
        if matrix is None:
            index = (slice(None),) + tuple(
                slice((s - p) // 2, (s - p) // 2 + p)
                for s, p in zip(in_shape, self.patch_size, strict=True)
            )
            image = image[index].to(torch.float32).clone(memory_format=torch.contiguous_format)
            label = label[index].to(torch.uint8).clone(memory_format=torch.contiguous_format)
        else:
            grid = self._grid(in_shape, matrix)
            image = self._resample_image(image.to(torch.float32), grid)
            label = _sample_nearest(label, grid).to(torch.uint8)
        d[self.image_key] = image
        d[self.label_key] = label
        return d


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


class NnUNetAugmentation(Compose):
    """``Compose`` that checks the image and label shapes before running its transforms.

    MONAI wraps exceptions raised inside a ``Compose`` into ``RuntimeError``; checking first
    keeps bad inputs a plain ``ValueError``. Built by :func:`nnunet_augmentation`.

    Args:
        transforms: The transforms, as for ``Compose``.
        patch_size: Output spatial size (Z, Y, X).
        image_key: Image key.
        label_key: Label key.
    """

    def __init__(
        self,
        transforms: Sequence[Any],
        patch_size: Sequence[int],
        image_key: Hashable = "image",
        label_key: Hashable = "label",
    ) -> None:
        super().__init__(transforms)
        self.patch_size = _check_patch_size(patch_size)
        self.image_key = image_key
        self.label_key = label_key

    def __call__(self, input_: Mapping[Hashable, Any], *args: Any, **kwargs: Any) -> Any:
        """Check ``input_`` (see :func:`nnunet_augmentation`) and run the transforms.

        Raises:
            ValueError: If ``input_`` is not a dict with a fitting image and label.
        """
        if not isinstance(input_, Mapping):
            raise ValueError(f"input must be a dict of arrays, got {type(input_).__name__}")
        _check_pair(input_, self.image_key, self.label_key, self.patch_size)
        return super().__call__(input_, *args, **kwargs)


def nnunet_augmentation(
    patch_size: Sequence[int],
    image_key: str = "image",
    label_key: str = "label",
    rotation_p: float = 0.2,
    rotation_deg: float = 30.0,
    scale_p: float = 0.2,
    scale_range: Sequence[float] = (0.7, 1.4),
    noise_p: float = 0.1,
    noise_variance: Sequence[float] = (0.0, 0.1),
    blur_p: float = 0.2,
    blur_sigma: Sequence[float] = (0.5, 1.0),
    brightness_p: float = 0.15,
    brightness_range: Sequence[float] = (0.75, 1.25),
    contrast_p: float = 0.15,
    contrast_range: Sequence[float] = (0.75, 1.25),
    lowres_p: float = 0.25,
    lowres_zoom: Sequence[float] = (0.5, 1.0),
    gamma_p: float = 0.3,
    inverted_gamma_p: float = 0.1,
    gamma_range: Sequence[float] = (0.7, 1.5),
    mirror_p: float = 0.5,
    mirror_axes: Sequence[int] = (0, 1, 2),
) -> Compose:
    """nnU-Net v2's default 3D training augmentation as a MONAI ``Compose``.

    Feed it a dict with the image (C, Z, Y, X) and the border-core label (1, Z, Y, X) cropped
    to at least ``patch_size``, ideally to :func:`initial_patch_size` so rotation and zoom-out
    see real data everywhere. Probabilities are per call (per sample).

    Steps (in order) and the MONAI transform behind each:

    1. rotation (``rotation_p``, angles uniform in ``+-rotation_deg`` per axis) and isotropic
       scaling (``scale_p``, factor uniform in ``scale_range``, > 1 zooms in), sampled
       independently, one resampling to ``patch_size`` (image trilinear with ``Resample``,
       label nearest by integer gather), else a centre crop: :class:`RandRotateScaleCropd`;
    2. Gaussian noise (``noise_p``, variance uniform in ``noise_variance``):
       :class:`RandGaussianNoiseVarianced`;
    3. Gaussian blur (``blur_p``, sigma per axis uniform in ``blur_sigma``):
       ``RandGaussianSmoothd``;
    4. brightness ``x *= f`` (``brightness_p``, ``f`` uniform in ``brightness_range``):
       ``RandScaleIntensityd``;
    5. contrast (``contrast_p``, factor uniform in ``contrast_range``, clipped to the range):
       :class:`RandContrastd`;
    6. low resolution (``lowres_p``, zoom uniform in ``lowres_zoom``, nearest down, trilinear
       up): ``RandSimulateLowResolutiond``;
    7. gamma on the inverted image (``inverted_gamma_p``), then gamma (``gamma_p``), gamma
       uniform in ``gamma_range``, on the image rescaled to [0, 1], mean and std restored:
       ``RandAdjustContrastd(invert_image=..., retain_stats=True)``;
    8. flip each axis in ``mirror_axes`` with ``mirror_p``, image and label: ``RandFlipd``;

    then ``ToTensord(track_meta=False)`` to return plain tensors.

    Args:
        patch_size: Output spatial size (Z, Y, X).
        image_key: Key of the image (C, Z, Y, X), any real dtype.
        label_key: Key of the label (1, Z, Y, X), small non-negative integer classes.
        rotation_p: Probability of a rotation.
        rotation_deg: Largest absolute rotation angle per axis, degrees, >= 0.
        scale_p: Probability of scaling.
        scale_range: (low, high) isotropic scale factors, ``0 < low <= high``.
        noise_p: Probability of Gaussian noise.
        noise_variance: (low, high) noise variance, ``0 <= low <= high``.
        blur_p: Probability of Gaussian blur.
        blur_sigma: (low, high) blur sigma in voxels, ``0 < low <= high``.
        brightness_p: Probability of a brightness change.
        brightness_range: (low, high) multiplicative factors, ``0 < low <= high``.
        contrast_p: Probability of a contrast change.
        contrast_range: (low, high) contrast factors, ``0 < low <= high``.
        lowres_p: Probability of the low-resolution simulation.
        lowres_zoom: (low, high) downsampling zoom, ``0 < low <= high <= 1``.
        gamma_p: Probability of a gamma on the image.
        inverted_gamma_p: Probability of a gamma on the inverted image.
        gamma_range: (low, high) gamma values, ``0 < low <= high``.
        mirror_p: Probability of flipping, per axis.
        mirror_axes: Spatial axes that may be flipped, distinct values in {0, 1, 2}.

    Returns:
        A :class:`NnUNetAugmentation` (a ``Compose``). Called on a dict, it returns a new dict
        with the image float32 (C, *patch_size) and the label uint8 (1, *patch_size), plain
        torch tensors; other keys pass through. Bad inputs raise ValueError.

    Raises:
        ValueError: If a probability is outside [0, 1], a range is reversed or out of bounds,
            ``patch_size`` is not 3 positive ints, ``mirror_axes`` is invalid, or
            ``image_key == label_key``.
    """
    size = _check_patch_size(patch_size)
    if image_key == label_key:
        raise ValueError(f"image_key and label_key must differ, both are {image_key!r}")
    probs = {
        "noise_p": noise_p,
        "blur_p": blur_p,
        "brightness_p": brightness_p,
        "contrast_p": contrast_p,
        "lowres_p": lowres_p,
        "gamma_p": gamma_p,
        "inverted_gamma_p": inverted_gamma_p,
        "mirror_p": mirror_p,
    }
    p = {name: _check_prob(name, value) for name, value in probs.items()}
    _check_range("noise_variance", noise_variance, low=0.0)
    _check_range("contrast_range", contrast_range, low=0.0, low_open=True)
    sigma = _check_range("blur_sigma", blur_sigma, low=0.0, low_open=True)
    brightness = _check_range("brightness_range", brightness_range, low=0.0, low_open=True)
    zoom = _check_range("lowres_zoom", lowres_zoom, low=0.0, low_open=True, high=1.0)
    gamma = _check_range("gamma_range", gamma_range, low=0.0, low_open=True)
    try:
        axes = [int(a) for a in mirror_axes]
    except (TypeError, ValueError) as err:
        raise ValueError(f"mirror_axes must be ints in {{0, 1, 2}}, got {mirror_axes!r}") from err
    if any(a not in (0, 1, 2) for a in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"mirror_axes must be distinct ints in {{0, 1, 2}}, got {mirror_axes!r}")

    keys = [image_key, label_key]
    transforms: list[Any] = [
        RandRotateScaleCropd(
            keys,
            size,
            rotation_p=rotation_p,
            rotation_deg=rotation_deg,
            scale_p=scale_p,
            scale_range=scale_range,
        ),
        RandGaussianNoiseVarianced(image_key, prob=p["noise_p"], variance=noise_variance),
        RandGaussianSmoothd(
            image_key, sigma_x=sigma, sigma_y=sigma, sigma_z=sigma, prob=p["blur_p"]
        ),
        RandScaleIntensityd(
            image_key,
            factors=(brightness[0] - 1.0, brightness[1] - 1.0),
            prob=p["brightness_p"],
        ),
        RandContrastd(image_key, prob=p["contrast_p"], factor_range=contrast_range),
        RandSimulateLowResolutiond(
            image_key,
            prob=p["lowres_p"],
            downsample_mode="nearest",
            upsample_mode="trilinear",
            zoom_range=zoom,
        ),
        RandAdjustContrastd(
            image_key,
            prob=p["inverted_gamma_p"],
            gamma=gamma,
            invert_image=True,
            retain_stats=True,
        ),
        RandAdjustContrastd(
            image_key,
            prob=p["gamma_p"],
            gamma=gamma,
            invert_image=False,
            retain_stats=True,
        ),
        *(RandFlipd(keys, prob=p["mirror_p"], spatial_axis=axis) for axis in axes),
        ToTensord(keys, track_meta=False),
    ]
    return NnUNetAugmentation(transforms, size, image_key=image_key, label_key=label_key)
