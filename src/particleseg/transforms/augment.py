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

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandFlipd,
    RandGaussianSmoothd,
    RandScaleIntensityd,
    RandSimulateLowResolutiond,
    ToTensord,
)

from particleseg.transforms._checks import _check_pair, _check_patch_size, _check_prob, _check_range
from particleseg.transforms.intensity_augment import RandContrastd, RandGaussianNoiseVarianced
from particleseg.transforms.spatial import RandRotateScaleCropd, initial_patch_size, rotation_matrix

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

    def split(self) -> tuple[Any, Compose]:
        """(the spatial step, a ``Compose`` of the later steps), sharing this pipeline's objects.

        Running the two in turn after :meth:`set_random_state` gives exactly what one call gives;
        a caller can work on the ``patch_size`` crop in between (the training pipeline re-renders
        the patch's appearance there, on the small output patch instead of the large input).
        """
        return self.transforms[0], Compose(self.transforms[1:])


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
    nearest_keys: Sequence[Hashable] = (),
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
        nearest_keys: Further keys (e.g. a phase map) that the spatial step resamples by nearest
            neighbour like the label; the later steps leave them alone.

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
            nearest_keys=nearest_keys,
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
