"""nnU-Net's spatial augmentation: rotation and scaling in one resampling.

The resampling also centre-crops to the patch; :func:`initial_patch_size` is the larger crop it
needs. Conventions: see :mod:`particleseg.transforms.augment`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.transforms import (
    MapTransform,
    Randomizable,
    Resample,
)
from monai.utils import convert_to_tensor

from particleseg.transforms._checks import _check_pair, _check_patch_size, _check_prob, _check_range


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
    exact). Entries under ``nearest_keys`` (e.g. a phase map) go the label's way but keep their
    dtype; a missing one is skipped.

    Args:
        keys: ``(image_key, label_key)``.
        patch_size: Output spatial size (Z, Y, X).
        rotation_p: Probability of rotating.
        rotation_deg: Largest absolute angle per axis, degrees.
        scale_p: Probability of scaling.
        scale_range: (low, high) scale factors, ``0 < low <= high``.
        nearest_keys: Further keys of (C, Z, Y, X) arrays of the image's spatial shape,
            resampled by nearest neighbour like the label.

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
        nearest_keys: Sequence[Hashable] = (),
    ) -> None:
        keys = list(keys)
        if len(keys) != 2:
            raise ValueError(f"keys must be (image_key, label_key), got {keys!r}")
        MapTransform.__init__(self, keys)
        self.image_key, self.label_key = keys
        self.nearest_keys = tuple(nearest_keys)
        if set(self.nearest_keys) & set(keys):
            raise ValueError(f"nearest_keys {self.nearest_keys} must not repeat {keys}")
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
            torch tensors; ``nearest_keys`` entries plain tensors of their own dtype; other keys
            as given.
        """
        _check_pair(data, self.image_key, self.label_key, self.patch_size)
        d = dict(data)
        image = convert_to_tensor(d[self.image_key], track_meta=False)
        label = convert_to_tensor(d[self.label_key], track_meta=False)
        self.randomize()
        matrix = self.sampling_matrix()
        in_shape = tuple(image.shape[1:])
        extra = {}
        for k in self.nearest_keys:
            if k in d:
                extra[k] = convert_to_tensor(d[k], track_meta=False)
                if tuple(extra[k].shape[1:]) != in_shape:
                    raise ValueError(
                        f"{k!r} must have the image's spatial shape {in_shape}, got "
                        f"{tuple(extra[k].shape)}"
                    )
        if matrix is None:
            index = (slice(None),) + tuple(
                slice((s - p) // 2, (s - p) // 2 + p)
                for s, p in zip(in_shape, self.patch_size, strict=True)
            )
            image = image[index].to(torch.float32).clone(memory_format=torch.contiguous_format)
            label = label[index].to(torch.uint8).clone(memory_format=torch.contiguous_format)
            for k, v in extra.items():
                d[k] = v[index].clone(memory_format=torch.contiguous_format)
        else:
            grid = self._grid(in_shape, matrix)
            image = self._resample_image(image.to(torch.float32), grid)
            label = _sample_nearest(label, grid).to(torch.uint8)
            for k, v in extra.items():
                d[k] = _sample_nearest(v, grid)
        d[self.image_key] = image
        d[self.label_key] = label
        return d
