import numpy as np
import pytest
import torch

from particleseg.data.datasets import TrainPatches, validation_crops
from particleseg.data.prepare import prepare_arrays, prepare_sample
from particleseg.io import load_dataset, write_dataset_json, write_volume
from particleseg.synth import packed_ellipsoids
from particleseg.targets import instance_to_border_core
from particleseg.transforms.normalization import fit_normalization


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    samples = []
    for i in range(2):
        labels = packed_ellipsoids((20, 40, 40), 12, (3, 6), seed=i).astype(np.uint32)
        image = 1000 + 3000 * (labels > 0) + np.random.default_rng(i).normal(0, 50, labels.shape)
        write_volume(root / "images" / f"s{i}.tif", image.astype(np.uint16))
        write_volume(root / "labels" / f"s{i}.tif", labels)
        samples.append(
            {
                "name": f"s{i}",
                "image": f"images/s{i}.tif",
                "label": f"labels/s{i}.tif",
                "spacing": [0.01] * 3,
                "particle_size_px": 8.0,
                "split": "train",
            }
        )
    write_dataset_json(root, "tiny", samples)
    return load_dataset(root)


STATS = {"scheme": "global_zscore", "mean": 2000.0, "std": 1500.0}


def test_prepare_resizes_then_converts(dataset):
    entry = dataset.samples[0]
    s = prepare_sample(entry, STATS, target_particle_size=12, border_thickness=2)
    assert s.shape == (30, 60, 60) and s.zoom == (1.5, 1.5, 1.5)
    assert s.image.dtype == np.float32 and s.instances.dtype == np.uint32
    # the border is computed after resizing: it equals the conversion of the resized instances
    assert np.array_equal(s.border_core, instance_to_border_core(s.instances, 2))
    # z-scored, not rescaled to [0, 1]: background ~ (1000 - 2000) / 1500
    assert np.median(s.image[s.instances == 0]) == pytest.approx(-2 / 3, abs=0.1)
    assert np.all(s.border_core[tuple(s.fg_coords.T)] > 0)


def test_prepare_keeps_every_particle_when_shrinking():
    labels = packed_ellipsoids((24, 48, 48), 40, (1.5, 4), seed=3).astype(np.uint32)
    image = (labels > 0).astype(np.float32)
    _, inst, _, _ = prepare_arrays(image, labels, fit_normalization([], STATS), (0.4, 0.4, 0.4), 1)
    assert len(np.unique(inst)) - 1 == len(np.unique(labels)) - 1


def test_cache_is_reused_and_invalidated(dataset, tmp_path):
    entry = dataset.samples[1]
    a = prepare_sample(entry, STATS, 8, 1, cache_dir=tmp_path)
    assert isinstance(a.image, np.memmap)
    b = prepare_sample(entry, STATS, 8, 1, cache_dir=tmp_path)
    assert b.folder == a.folder
    c = prepare_sample(entry, STATS, 8, 2, cache_dir=tmp_path)  # other border: other entry
    assert c.folder != a.folder
    assert len(list(tmp_path.iterdir())) == 2
    import pickle

    d = pickle.loads(pickle.dumps(a))  # pickles as its folder, reopens the memmaps
    assert len(pickle.dumps(a)) < 2000 and np.array_equal(d.image, a.image)


def test_unlabelled_sample_is_refused(dataset):
    from dataclasses import replace

    entry = replace(dataset.samples[0], label=None)
    with pytest.raises(ValueError, match="has no label"):
        prepare_sample(entry, STATS, 8, 1)


def test_train_patches_shapes_foreground_and_reproducibility(dataset):
    samples = [prepare_sample(e, STATS, 8, 1) for e in dataset.samples]
    ds = TrainPatches(samples, (16, 16, 16), (20, 20, 20), length=6, oversample_fg=1.0)
    torch.manual_seed(0)
    items = [ds[i] for i in range(6)]
    for it in items:
        assert it["image"].shape == (1, 16, 16, 16) and it["image"].dtype == torch.float32
        assert it["label"].dtype == torch.int64 and it["label"].max() <= 2
    # a patch centred on foreground (then centre-cropped from the initial crop) holds foreground
    assert all(it["label"].sum() > 0 for it in items)
    torch.manual_seed(0)
    again = [ds[i] for i in range(6)]
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(items, again, strict=True))
    with pytest.raises(ValueError, match="initial_patch_size"):
        TrainPatches(samples, (16, 16, 16), (8, 16, 16), length=1)


def test_validation_crops_are_fixed_and_centred_on_foreground(dataset):
    samples = [prepare_sample(e, STATS, 8, 1) for e in dataset.samples]
    a = validation_crops(samples, (16, 24, 24), 2, seed=1)
    b = validation_crops(samples, (16, 24, 24), 2, seed=1)
    assert [c["name"] for c in a] == ["s0#0", "s0#1", "s1#0", "s1#1"]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x["instances"], y["instances"])
        assert x["image"].shape == (1, 16, 24, 24) and x["instances"].any()
    whole = validation_crops(samples, (64, 64, 64), 2)
    assert len(whole) == 2 and whole[0]["instances"].shape == samples[0].shape


@pytest.fixture(scope="module")
def with_phases(tmp_path_factory):
    from particleseg.synth.dataset import build_dataset

    folder = tmp_path_factory.mktemp("phases")
    scene = {"size_median_px": 8, "size_range_px": [5, 12], "packing": 0.25}
    split = {"n": 1, "shape": [24, 48, 48], "scene": scene, "ct": {"photons": 2000}}
    build_dataset(folder, {"train": split}, mode="fast", seed=3, progress=False)
    return load_dataset(folder).samples[0]


def test_per_scan_normalization_and_phases_are_prepared_as_predict_sees_them(with_phases):
    from particleseg.io import read_volume
    from particleseg.transforms.normalization import normalization_for_scan, sample_voxels

    pct = {"scheme": "percentile"}
    s = prepare_sample(with_phases, pct, target_particle_size=12, border_thickness=1)
    image = np.asarray(read_volume(with_phases.image))
    phases = np.asarray(read_volume(with_phases.phases))
    norm = normalization_for_scan(image, pct)
    assert s.image.mean() == pytest.approx(norm(image).mean(), abs=0.02)  # resizing keeps the mean
    assert s.phases.dtype == np.uint8 and s.phases.shape == s.image.shape
    # the phases at the very voxels the normalization sampled on the scan
    assert np.array_equal(s.phase_sample, sample_voxels(phases))
    assert ((s.phases >= 4) == (s.instances > 0)).mean() > 0.97  # minerals where particles are


def test_appearance_re_renders_patches_and_leaves_the_labels(with_phases):
    from particleseg.transforms.appearance import RandAppearanced

    pct = {"scheme": "percentile"}
    s = prepare_sample(with_phases, pct, 12, 1)
    plain = TrainPatches([s], (16, 16, 16), (16, 16, 16), length=4)
    rendered = TrainPatches(
        [s],
        (16, 16, 16),
        (16, 16, 16),
        length=4,
        appearance=RandAppearanced(normalization=pct, prob=1.0),
    )
    for i in range(4):
        torch.manual_seed(i)
        a = plain[i]
        torch.manual_seed(i)
        b = rendered[i]
        assert torch.equal(a["label"], b["label"])
        assert not torch.equal(a["image"], b["image"])


def test_appearance_renders_the_output_patch_after_the_spatial_step(with_phases):
    """The phase map follows the rotation/zoom with the labels; the rendering sees only the patch,
    and the same items come back for the same seed, with the labels the plain pipeline gives."""
    from particleseg.transforms.appearance import RandAppearanced
    from particleseg.transforms.augment import initial_patch_size, nnunet_augmentation

    pct = {"scheme": "percentile"}
    s = prepare_sample(with_phases, pct, 12, 1)
    patch = (16, 16, 16)
    knobs = {"rotation_p": 1.0, "scale_p": 1.0, "scale_range": (0.7, 1.4)}
    initial = initial_patch_size(patch, 30.0, (0.7, 1.4))
    seen = []

    class Recording(RandAppearanced):
        def __call__(self, data):
            seen.append((np.asarray(data["phases"])[0], np.asarray(data["label"])[0]))
            return super().__call__(data)

    def patches(appearance):
        aug = nnunet_augmentation(patch, nearest_keys=("phases",), **knobs)
        ds = TrainPatches([s], patch, initial, 4, 1.0, augmentation=aug, appearance=appearance)
        out = []
        for i in range(4):
            torch.manual_seed(i)
            out.append(ds[i])
        return out

    plain = patches(None)
    rendered = patches(Recording(normalization=pct, prob=1.0))
    again = patches(Recording(normalization=pct, prob=1.0))
    assert len(seen) == 8
    for phases, label in seen:
        assert phases.shape == patch and phases.dtype == np.uint8
        assert ((phases >= 4) == (label > 0)).mean() > 0.95  # aligned after rotation and zoom
    for a, b, c in zip(plain, rendered, again, strict=True):
        assert torch.equal(a["label"], b["label"]) and not torch.equal(a["image"], b["image"])
        assert torch.equal(b["image"], c["image"])
