import itertools
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from particleseg.transforms.augment import (
    RandContrastd,
    RandGaussianNoiseVarianced,
    RandRotateScaleCropd,
    initial_patch_size,
    nnunet_augmentation,
    rotation_matrix,
)

ALL_OFF = {
    "rotation_p": 0.0,
    "scale_p": 0.0,
    "noise_p": 0.0,
    "blur_p": 0.0,
    "brightness_p": 0.0,
    "contrast_p": 0.0,
    "lowres_p": 0.0,
    "gamma_p": 0.0,
    "inverted_gamma_p": 0.0,
    "mirror_p": 0.0,
}


def _aug(patch_size, seed=0, **kwargs):
    aug = nnunet_augmentation(patch_size, **{**ALL_OFF, **kwargs})
    aug.set_random_state(seed)
    return aug


def _centre_crop(x, patch_size):
    index = tuple(
        slice((s - p) // 2, (s - p) // 2 + p) for s, p in zip(x.shape[1:], patch_size, strict=True)
    )
    return x[(slice(None), *index)]


def _random_pair(shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    image = torch.randn((1, *shape), generator=gen)
    label = torch.randint(0, 3, (1, *shape), generator=gen, dtype=torch.uint8)
    return image, label


def _sphere_pair(shape, radius, border=2.0, centre=None):
    """Border-core sphere (default at the input centre): 1 core, 2 border shell; image = label."""
    centre = [(s - 1) / 2 for s in shape] if centre is None else centre
    zz, yy, xx = np.meshgrid(
        *[np.arange(s) - c for s, c in zip(shape, centre, strict=True)], indexing="ij"
    )
    dist = np.sqrt(zz**2 + yy**2 + xx**2)
    label = np.zeros(shape, np.uint8)
    label[dist <= radius] = 2
    label[dist <= radius - border] = 1
    return torch.from_numpy(label[None].astype(np.float32)), torch.from_numpy(label[None])


# ------------------------------------------------------------------------------ fast path


@pytest.mark.parametrize(
    ("in_shape", "patch"), [((20, 22, 24), (12, 12, 12)), ((13, 20, 17), (8, 9, 10))]
)
def test_all_probabilities_zero_is_exact_centre_crop(in_shape, patch):
    image, label = _random_pair(in_shape)
    out = _aug(patch)({"image": image, "label": label, "name": "vol7", "spacing": (1.0, 1.0, 1.0)})
    assert type(out["image"]) is torch.Tensor and type(out["label"]) is torch.Tensor
    assert out["image"].dtype == torch.float32 and out["label"].dtype == torch.uint8
    assert tuple(out["image"].shape) == (1, *patch) and tuple(out["label"].shape) == (1, *patch)
    assert torch.equal(out["image"], _centre_crop(image, patch))
    assert torch.equal(out["label"], _centre_crop(label, patch))
    assert out["name"] == "vol7" and out["spacing"] == (1.0, 1.0, 1.0)


def test_numpy_int64_input_gives_uint8_label_and_does_not_alias_input():
    image, label = _random_pair((14, 14, 14))
    data = {"image": image.numpy(), "label": label.numpy().astype(np.int64)}
    out = _aug((10, 10, 10))(data)
    assert out["label"].dtype == torch.uint8
    assert torch.equal(out["label"], _centre_crop(label, (10, 10, 10)))
    out["image"] += 1.0
    assert np.array_equal(data["image"], image.numpy())


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_mirror_one_axis_is_flipped_centre_crop(axis):
    image, label = _random_pair((15, 16, 18))
    patch = (10, 12, 14)
    out = _aug(patch, mirror_p=1.0, mirror_axes=(axis,))({"image": image, "label": label})
    assert torch.equal(out["image"], torch.flip(_centre_crop(image, patch), dims=(axis + 1,)))
    assert torch.equal(out["label"], torch.flip(_centre_crop(label, patch), dims=(axis + 1,)))


# ------------------------------------------------------------------------------ spatial


def test_rotation_scaling_keeps_label_integer_classes_and_aligned_with_image():
    image, label = _sphere_pair((40, 40, 40), radius=11.0, border=3.0)
    aug = _aug((28, 28, 28), rotation_p=1.0, scale_p=1.0, scale_range=(0.8, 1.25))
    for _ in range(4):
        out = aug({"image": image, "label": label})
        lab, img = out["label"], out["image"]
        assert lab.dtype == torch.uint8
        assert set(torch.unique(lab).tolist()) <= {0, 1, 2}
        assert set(torch.unique(lab).tolist()) == {0, 1, 2}
        mismatch = torch.round(img).to(torch.uint8) != lab
        # Trilinear image vs nearest label differ only where the label changes: on voxels whose
        # 3x3x3 neighbourhood holds one class they agree.
        lab_f = lab[None].float()
        uniform = F.max_pool3d(lab_f, 3, 1, 1) == -F.max_pool3d(-lab_f, 3, 1, 1)
        assert mismatch[uniform[0]].float().mean().item() < 0.002
        assert mismatch.float().mean().item() < 0.08


def test_rotation_aligns_image_and_label_of_an_asymmetric_object():
    shape = (36, 36, 36)
    label = torch.zeros((1, *shape), dtype=torch.uint8)
    label[0, 14:22, 12:24, 6:30] = 1  # a brick, not rotation invariant
    label[0, 16:20, 14:22, 8:28] = 2
    image = label.float()
    aug = _aug((24, 24, 24), rotation_p=1.0, rotation_deg=40.0)
    changed = False
    for _ in range(3):
        out = aug({"image": image, "label": label})
        crop = _centre_crop(label, (24, 24, 24))
        changed |= not torch.equal(out["label"], crop)
        mismatch = (torch.round(out["image"]).to(torch.uint8) != out["label"]).float().mean()
        assert mismatch.item() < 0.05
    assert changed


@pytest.mark.parametrize("factor", [1.3, 0.8])
def test_scale_factor_above_one_enlarges_content(factor):
    image, label = _sphere_pair((40, 40, 40), radius=6.0)
    patch = (28, 28, 28)
    before = (_centre_crop(label, patch) > 0).sum().item()
    out = _aug(patch, scale_p=1.0, scale_range=(factor, factor))({"image": image, "label": label})
    after = (out["label"] > 0).sum().item()
    assert after / before == pytest.approx(factor**3, rel=0.1)
    # still centred
    coords = torch.nonzero(out["label"][0] > 0).float().mean(0)
    assert torch.allclose(coords, torch.full((3,), 13.5), atol=0.3)


def test_rotation_keeps_centred_sphere_volume_and_position():
    patch = (26, 26, 26)
    shape = (41, 40, 39)
    crop_centre = [(s - p) // 2 + (p - 1) / 2 for s, p in zip(shape, patch, strict=True)]
    image, label = _sphere_pair(shape, radius=8.0, centre=crop_centre)
    crop = _centre_crop(label, patch)
    before = (crop > 0).sum().item()
    before_centre = torch.nonzero(crop[0] > 0).float().mean(0)
    aug = _aug(patch, rotation_p=1.0, rotation_deg=30.0)
    for _ in range(3):
        out = aug({"image": image, "label": label})
        after = (out["label"] > 0).sum().item()
        assert after == pytest.approx(before, rel=0.03)
        centre = torch.nonzero(out["label"][0] > 0).float().mean(0)
        assert torch.allclose(centre, before_centre, atol=0.3)


def test_rotation_and_scaling_are_sampled_independently():
    tr = RandRotateScaleCropd(["image", "label"], (8, 8, 8), rotation_p=0.5, scale_p=0.5)
    tr.set_random_state(3)
    seen = set()
    for _ in range(200):
        tr.randomize()
        seen.add((tr.angles is not None, tr.scale is not None))
        if tr.angles is not None:
            assert np.all(np.abs(tr.angles) <= math.radians(30.0))
        if tr.scale is not None:
            assert 0.7 <= tr.scale <= 1.4
    assert seen == {(False, False), (False, True), (True, False), (True, True)}


def test_rotation_matrix_is_a_rotation():
    rot = rotation_matrix((0.3, -0.2, 0.5))
    assert np.allclose(rot @ rot.T, np.eye(3))
    assert np.linalg.det(rot) == pytest.approx(1.0)
    quarter = rotation_matrix((math.pi / 2, 0.0, 0.0))  # about Z: X -> +-Y, Z fixed
    assert np.allclose(np.abs(quarter @ [0, 0, 1]), [0, 1, 0])
    assert np.allclose(quarter @ [1, 0, 0], [1, 0, 0])


# ------------------------------------------------------------------------------ intensity


@pytest.mark.parametrize(
    "kwargs",
    [
        {"noise_p": 1.0},
        {"blur_p": 1.0},
        {"brightness_p": 1.0},
        {"contrast_p": 1.0},
        {"lowres_p": 1.0, "lowres_zoom": (0.5, 0.6)},
        {"gamma_p": 1.0},
        {"inverted_gamma_p": 1.0},
    ],
)
def test_intensity_transforms_change_image_never_label(kwargs):
    image, label = _random_pair((14, 14, 14))
    image = image + 3.0
    patch = (10, 10, 10)
    out = _aug(patch, **kwargs)({"image": image, "label": label})
    assert out["image"].dtype == torch.float32
    assert tuple(out["image"].shape) == (1, *patch)
    assert not torch.allclose(out["image"], _centre_crop(image, patch))
    assert torch.equal(out["label"], _centre_crop(label, patch))


def test_brightness_multiplies_by_a_factor_in_range():
    image, label = _random_pair((12, 12, 12))
    image = image.abs() + 1.0
    crop = _centre_crop(image, (8, 8, 8))
    aug = _aug((8, 8, 8), brightness_p=1.0, brightness_range=(0.75, 1.25))
    for _ in range(5):
        ratio = aug({"image": image, "label": label})["image"] / crop
        assert torch.allclose(ratio, ratio.flatten()[0].expand_as(ratio), atol=1e-5)
        assert 0.75 <= ratio.flatten()[0].item() <= 1.25


def test_contrast_keeps_original_range():
    image, label = _random_pair((14, 14, 14))
    crop = _centre_crop(image, (10, 10, 10))
    aug = _aug((10, 10, 10), contrast_p=1.0, contrast_range=(1.5, 2.0))
    out = aug({"image": image, "label": label})["image"]
    assert out.min() >= crop.min() and out.max() <= crop.max()
    assert (out == crop.max()).sum() > 1  # stretched and clipped


def test_contrast_transform_formula():
    image = torch.linspace(-1.0, 3.0, 64).reshape(1, 4, 4, 4)
    tr = RandContrastd("image", prob=1.0, factor_range=(0.5, 0.5))
    out = tr({"image": image})["image"]
    mean = image.mean()
    assert torch.allclose(out, (image - mean) * 0.5 + mean)


@pytest.mark.parametrize("key", ["gamma_p", "inverted_gamma_p"])
def test_gamma_retains_mean_and_std(key):
    image, label = _random_pair((14, 14, 14))
    crop = _centre_crop(image, (10, 10, 10))
    aug = _aug((10, 10, 10), **{key: 1.0}, gamma_range=(0.5, 0.6))
    out = aug({"image": image, "label": label})["image"]
    assert out.mean().item() == pytest.approx(crop.mean().item(), abs=1e-4)
    assert out.std().item() == pytest.approx(crop.std().item(), rel=1e-4)
    assert not torch.allclose(out, crop, atol=1e-2)


def test_noise_std_follows_sampled_variance():
    tr = RandGaussianNoiseVarianced("image", prob=1.0, variance=(0.04, 0.04))
    tr.set_random_state(0)
    image = torch.zeros((1, 32, 32, 32))
    out = tr({"image": image})["image"]
    assert out.std().item() == pytest.approx(0.2, rel=0.03)


# ------------------------------------------------------------------------------ general


def test_reproducible_under_set_random_state():
    image, label = _random_pair((20, 21, 22))
    kwargs = {
        "rotation_p": 0.5,
        "scale_p": 0.5,
        "noise_p": 0.5,
        "blur_p": 0.5,
        "brightness_p": 0.5,
        "contrast_p": 0.5,
        "lowres_p": 0.5,
        "gamma_p": 0.5,
        "inverted_gamma_p": 0.5,
    }
    a = nnunet_augmentation((12, 12, 12), **kwargs).set_random_state(7)
    b = nnunet_augmentation((12, 12, 12), **kwargs).set_random_state(7)
    c = nnunet_augmentation((12, 12, 12), **kwargs).set_random_state(8)
    outs_a = [a({"image": image, "label": label}) for _ in range(4)]
    outs_b = [b({"image": image, "label": label}) for _ in range(4)]
    outs_c = [c({"image": image, "label": label}) for _ in range(4)]
    for oa, ob in zip(outs_a, outs_b, strict=True):
        assert torch.equal(oa["image"], ob["image"]) and torch.equal(oa["label"], ob["label"])
    assert any(
        not torch.equal(oa["image"], oc["image"]) for oa, oc in zip(outs_a, outs_c, strict=True)
    )


def test_split_steps_give_what_one_call_gives_and_carry_nearest_keys():
    image, label = _random_pair((20, 21, 22))
    phases = (label * 3 + 1).to(torch.uint8)  # a phase map the label can be read off
    kwargs = {"rotation_p": 0.7, "scale_p": 0.7, "noise_p": 0.5, "gamma_p": 0.5, "mirror_p": 0.5}
    whole = nnunet_augmentation((12, 12, 12), nearest_keys=("phases",), **kwargs)
    parts = nnunet_augmentation((12, 12, 12), nearest_keys=("phases",), **kwargs)
    spatial, later = parts.split()
    for seed in range(6):
        data = {"image": image, "label": label, "phases": phases}
        a = whole.set_random_state(seed)(data)
        parts.set_random_state(seed)
        middle = spatial(data)
        # the phase map went through the label's nearest-neighbour resampling, dtype kept
        assert middle["phases"].dtype == torch.uint8
        assert torch.equal(middle["phases"], middle["label"] * 3 + 1)
        b = later(middle)
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    # a missing nearest key is skipped; one that repeats the image or label key is refused
    assert "phases" not in spatial({"image": image, "label": label})
    with pytest.raises(ValueError, match="nearest_keys"):
        nnunet_augmentation((12, 12, 12), nearest_keys=("label",))


def test_default_pipeline_output_shapes_and_types():
    patch = (12, 10, 14)
    image, label = _random_pair(initial_patch_size(patch))
    aug = nnunet_augmentation(patch).set_random_state(0)
    for _ in range(10):
        out = aug({"image": image, "label": label})
        assert tuple(out["image"].shape) == (1, *patch)
        assert tuple(out["label"].shape) == (1, *patch)
        assert out["image"].dtype == torch.float32 and out["label"].dtype == torch.uint8
        assert set(torch.unique(out["label"]).tolist()) <= {0, 1, 2}


@pytest.mark.parametrize(
    "name",
    [
        "rotation_p",
        "scale_p",
        "noise_p",
        "blur_p",
        "brightness_p",
        "contrast_p",
        "lowres_p",
        "gamma_p",
        "inverted_gamma_p",
        "mirror_p",
    ],
)
@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_probability_out_of_range_raises(name, value):
    with pytest.raises(ValueError, match=name):
        nnunet_augmentation((8, 8, 8), **{name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("scale_range", (1.4, 0.7)),
        ("scale_range", (0.0, 1.4)),
        ("noise_variance", (0.1, 0.0)),
        ("noise_variance", (-0.1, 0.1)),
        ("blur_sigma", (1.0, 0.5)),
        ("brightness_range", (1.25, 0.75)),
        ("contrast_range", (1.25, 0.75)),
        ("lowres_zoom", (1.0, 0.5)),
        ("lowres_zoom", (0.5, 1.5)),
        ("gamma_range", (1.5, 0.7)),
        ("gamma_range", (0.0, 1.5)),
        ("rotation_deg", -5.0),
        ("mirror_axes", (0, 3)),
        ("mirror_axes", (1, 1)),
    ],
)
def test_bad_ranges_raise(name, value):
    with pytest.raises(ValueError, match=name):
        nnunet_augmentation((8, 8, 8), **{name: value})


@pytest.mark.parametrize("patch", [(8, 8), (8, 0, 8), (8, 8.5, 8)])
def test_bad_patch_size_raises(patch):
    with pytest.raises(ValueError, match="patch_size"):
        nnunet_augmentation(patch)


def test_patch_larger_than_input_raises():
    image, label = _random_pair((10, 12, 12))
    with pytest.raises(ValueError, match="smaller than patch_size"):
        nnunet_augmentation((11, 8, 8))({"image": image, "label": label})


def test_bad_input_shapes_raise():
    image, label = _random_pair((10, 12, 12))
    aug = nnunet_augmentation((8, 8, 8))
    with pytest.raises(ValueError, match="spatial shapes differ"):
        aug({"image": image, "label": label[:, :, :10]})
    with pytest.raises(ValueError, match="channel-first"):
        aug({"image": image[0], "label": label})
    with pytest.raises(ValueError, match="no key"):
        aug({"image": image})


# ------------------------------------------------------------------------------ initial size


@pytest.mark.parametrize(
    ("patch", "deg", "scale_range"),
    [
        ((24, 24, 24), 30.0, (0.7, 1.4)),
        ((16, 32, 48), 30.0, (0.7, 1.4)),
        ((20, 40, 40), 15.0, (0.85, 1.25)),
        ((24, 24, 24), 180.0, (1.0, 1.0)),
    ],
)
def test_initial_patch_size_covers_rotated_and_scaled_patch(patch, deg, scale_range):
    size = np.array(initial_patch_size(patch, deg, scale_range))
    assert np.all(size >= np.array(patch))
    half_out = (np.array(patch) - 1) / 2
    half_in = (size - 1) / 2
    corners = np.array(list(itertools.product(*[(-h, h) for h in half_out])))
    t = math.radians(deg)
    rng = np.random.default_rng(0)
    extremes = list(itertools.product((-t, 0.0, t), repeat=3))
    angles = np.concatenate([np.array(extremes), rng.uniform(-t, t, size=(300, 3))])
    for a in angles:
        mapped = corners @ (rotation_matrix(a) / scale_range[0]).T
        assert np.all(np.abs(mapped) <= half_in + 1e-9)


def test_initial_patch_size_simple_cases():
    assert initial_patch_size((32, 40, 48), 0.0, (1.0, 1.5)) == (32, 40, 48)
    assert initial_patch_size((35, 35, 70), 0.0, (0.7, 1.4)) == (50, 50, 100)
    diag = math.ceil(math.sqrt(3 * 20**2))
    assert initial_patch_size((20, 20, 20), 180.0, (1.0, 1.0)) == (diag, diag, diag)
    assert initial_patch_size((20, 20, 20), 10.0) <= initial_patch_size((20, 20, 20), 30.0)
    with pytest.raises(ValueError, match="scale_range"):
        initial_patch_size((20, 20, 20), 30.0, (0.0, 1.0))


def test_transform_uses_initial_patch_without_padding():
    """Worst-case zoom-out plus rotation on an input of initial_patch_size never pads."""
    patch = (16, 16, 16)
    size = initial_patch_size(patch, 30.0, (0.7, 1.4))
    tr = RandRotateScaleCropd(["image", "label"], patch, 1.0, 30.0, 1.0, (0.7, 0.7))
    tr.set_random_state(0)
    for _ in range(20):
        tr.randomize()
        grid = tr._grid(size, tr.sampling_matrix())
        for i, s in enumerate(size):
            assert grid[i].abs().max().item() <= (s - 1) / 2 + 1e-4


@pytest.mark.slow
def test_default_pipeline_speed_96():
    torch.set_num_threads(1)
    patch = (96, 96, 96)
    image, label = _random_pair((125, 125, 125))
    aug = nnunet_augmentation(patch).set_random_state(0)
    aug({"image": image, "label": label})
    start = time.perf_counter()
    for _ in range(30):
        aug({"image": image, "label": label})
    assert (time.perf_counter() - start) / 30 < 0.2
