"""Scene kinds, split variants and the wide synthetic world (conf/synth/wide.yaml)."""

import json

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from particleseg.config import CONF_DIR
from particleseg.io import load_dataset, read_sample
from particleseg.synth.dataset import (
    build_dataset,
    check_split,
    choose_variant,
    draw_params,
    render_sample,
    render_split_sample,
    sample_seed,
)
from particleseg.synth.granular import GranularParams
from particleseg.synth.phases import MATERIAL0
from particleseg.synth.scene import SceneParams

CONF = CONF_DIR / "synth"
SHAPE = [16, 40, 40]
CYLINDER = {"size_median_px": 7, "size_range_px": [3, 14], "packing": 0.15, "n_bubbles": 0}
GRANULAR = {"kind": "granular", "size_median_px": 8, "size_range_px": [3, 16]}
MIXED = {
    "n": 1,
    "shape": SHAPE,
    "variants": [
        {"name": "resin", "weight": 1.0, "scene": CYLINDER, "ct": {}},
        {"name": "sand", "weight": 1.0, "scene": GRANULAR, "ct": {"photons": 5000}},
    ],
}


def _wide(overrides=()):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="wide", overrides=list(overrides))
    options = OmegaConf.to_container(cfg, resolve=True)
    options.pop("hydra", None)
    return options


def test_render_sample_dispatches_on_the_scene_kind():
    sample = render_sample(SHAPE, GRANULAR, {}, "fast", 3)
    assert sample.info["kind"] == "granular" and "kind" not in sample.info["scene"]
    assert sample.info["contacts_per_particle"] > 0 and sample.info["n_particles"] > 0
    assert not np.any(sample.phases[sample.labels == 0] >= MATERIAL0)
    plain = render_sample(SHAPE, CYLINDER, {}, "fast", 3)
    assert plain.info["kind"] == "cylinder"
    with pytest.raises(ValueError, match="kind"):
        render_sample(SHAPE, {"kind": "foam"}, {}, "fast", 3)


def test_variants_are_drawn_per_seed_deterministically_and_recorded():
    names = [choose_variant(MIXED, sample_seed(0, "train", i))[0] for i in range(40)]
    assert names == [choose_variant(MIXED, sample_seed(0, "train", i))[0] for i in range(40)]
    assert set(names) == {"resin", "sand"}
    seed = next(sample_seed(0, "train", i) for i, n in enumerate(names) if n == "sand")
    a = render_split_sample(MIXED, "fast", seed)
    b = render_split_sample(MIXED, "fast", seed)
    assert a.info["variant"] == "sand" and a.info["kind"] == "granular"
    assert a.info["ct"] == {"photons": 5000}
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.phases, b.phases)


def test_variant_weights_steer_the_draw():
    spec = {**MIXED, "variants": [{**MIXED["variants"][0], "weight": 9}, MIXED["variants"][1]]}
    names = [choose_variant(spec, sample_seed(1, "train", i))[0] for i in range(400)]
    assert 0.8 < names.count("resin") / len(names) < 0.97


def test_split_without_variants_renders_as_before():
    spec = {"n": 1, "shape": SHAPE, "scene": CYLINDER, "ct": {"photons": 800}}
    seed = sample_seed(0, "train", 0)
    assert choose_variant(spec, seed) == (None, CYLINDER, {"photons": 800})
    a = render_split_sample(spec, "fast", seed)
    b = render_sample(SHAPE, CYLINDER, {"photons": 800}, "fast", seed)
    assert "variant" not in a.info
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scene": CYLINDER}, "either"),
        ({"variants": []}, "non-empty"),
        ({"variants": [{"weight": 1}]}, "name"),
        ({"variants": [{"name": "a"}, {"name": "a"}]}, "twice"),
        ({"variants": [{"name": "a", "weight": 0}]}, "positive weight"),
        ({"variants": [{"name": "a", "shape": [8, 8, 8]}]}, "unknown keys"),
    ],
)
def test_bad_variants_are_value_errors_naming_the_split(change, message):
    with pytest.raises(ValueError, match=f"'train'.*{message}"):
        check_split("train", {**MIXED, **change})


def test_wide_config_variants_give_valid_params_for_every_draw():
    options = _wide()
    assert options["out_dir"] == "data/synth_wide" and options["mode"] == "full"
    splits = options["splits"]
    assert {k: v["n"] for k, v in splits.items()} == {"train": 48, "val": 16, "id_test": 4}
    assert all(v["shape"] == [96, 160, 160] for v in splits.values())
    assert splits["val"]["variants"] == splits["train"]["variants"]
    seen = set()
    for i in range(60):
        seed = sample_seed(0, "train", i)
        name, scene, ct = choose_variant(splits["train"], seed)
        seen.add(name)
        rng = np.random.default_rng(seed)
        params = draw_params(scene, rng)
        kind = params.pop("kind")
        (GranularParams if kind == "granular" else SceneParams)(**params)
        assert draw_params(ct, rng)["photons"] > 0
    assert seen == {v["name"] for v in splits["train"]["variants"]}
    assert sample_seed(0, "val", 0) != sample_seed(0, "train", 0)


def test_wide_config_builds_a_tiny_dataset_that_loads(tmp_path):
    shape = "[24,96,96]"  # 96 px: the smallest cylinder margin drawn still leaves a cylinder
    options = _wide(
        [
            f"out_dir={tmp_path / 'wide'}",
            "mode=fast",
            "progress=false",
            "splits.train.n=2",  # train_001 is the granular variant with seed 0
            "splits.val.n=1",
            "splits.id_test.n=1",
            f"splits.train.shape={shape}",
        ]
    )
    path = build_dataset(**options)
    dataset = load_dataset(path.parent)
    assert [e.split for e in dataset.samples] == ["train", "train", "val", "id_test"]
    names = {v["name"] for v in options["splits"]["train"]["variants"]}
    infos = [s["info"] for s in json.loads(path.read_text())["samples"]]
    assert all(info["variant"] in names for info in infos)
    assert {info["kind"] for info in infos} == {"cylinder", "granular"}
    for entry in dataset.samples:
        image, labels = read_sample(entry)
        labels = np.asarray(labels)
        assert np.asarray(image).shape == (24, 96, 96) and labels.max() > 0
        assert entry.phases is not None and entry.phases.is_file()


def test_a_split_that_renders_no_particle_is_a_clear_error():
    spec = {"n": 1, "shape": SHAPE, "scene": {**CYLINDER, "packing": 0.0}, "ct": {}}
    with pytest.raises(ValueError, match="no particle in 4 attempts"):
        render_split_sample(spec, "fast", 0)
