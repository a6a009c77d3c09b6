import json
import subprocess
import sys
from pathlib import Path

import cc3d
import numpy as np
import pytest

from particleseg.io import load_dataset, read_sample, validate_dataset
from particleseg.synth.dataset import build_dataset, draw_params, mean_equivalent_diameter

ROOT = Path(__file__).resolve().parents[2]
SCENE = {"size_median_px": 7, "size_range_px": [3, 14], "packing": 0.15, "n_bubbles": 1}
TINY = {
    "train": {"n": 1, "shape": [24, 48, 48], "scene": SCENE, "ct": {}},
    "id_test": {"n": 1, "shape": [24, 48, 48], "scene": SCENE, "ct": {}},
    "ood_test": {
        "n": 1,
        "shape": [24, 48, 48],
        "scene": {**SCENE, "shape_weights": {"needle": 1.0}},
        "ct": {"photons": {"uniform": [200, 300]}},
    },
}


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_build_dataset_writes_a_valid_dataset_with_exact_labels(tmp_path, mode):
    build_dataset(tmp_path, TINY, mode=mode, seed=3, progress=False, ood_differences="needles")
    dataset = validate_dataset(tmp_path, check_arrays=True)
    assert [e.split for e in dataset.samples] == ["train", "id_test", "ood_test"]
    assert dataset.extra["ood_differences"] == "needles"
    for entry in dataset.samples:
        image, labels = read_sample(entry)
        image, labels = np.array(image), np.array(labels)
        assert image.dtype == np.uint16 and labels.dtype == np.uint32
        n = int(labels.max())
        assert n > 0 and np.array_equal(np.unique(labels), np.arange(n + 1))
        assert cc3d.connected_components(labels, connectivity=6).max() == n
        # particles are brighter than their surroundings on average
        assert image[labels > 0].mean() > image[labels == 0].mean()
        expected = mean_equivalent_diameter(labels) * entry.metadata.spacing[0]
        assert entry.metadata.particle_size == pytest.approx(expected, rel=1e-3)


def test_build_dataset_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    build_dataset(a, TINY, mode="fast", seed=5, progress=False)
    build_dataset(b, TINY, mode="fast", seed=5, progress=False)
    for ea, eb in zip(load_dataset(a).samples, load_dataset(b).samples, strict=True):
        ia, la = read_sample(ea)
        ib, lb = read_sample(eb)
        np.testing.assert_array_equal(np.asarray(ia), np.asarray(ib))
        np.testing.assert_array_equal(np.asarray(la), np.asarray(lb))


def test_build_dataset_refuses_an_existing_dataset(tmp_path):
    build_dataset(tmp_path, {"train": TINY["train"]}, mode="fast", progress=False)
    with pytest.raises(ValueError, match="already"):
        build_dataset(tmp_path, {"train": TINY["train"]}, mode="fast", progress=False)


def test_draw_params_draws_per_sample_and_passes_plain_values():
    rng = np.random.default_rng(0)
    spec = {
        "a": {"uniform": [1, 2]},
        "b": {"loguniform": [10, 1000]},
        "c": {"choice": [[1, 2]]},
        "d": [3, 4],
        "e": 7,
    }
    out = draw_params(spec, rng)
    assert 1 <= out["a"] <= 2 and 10 <= out["b"] <= 1000
    assert out["c"] == [1, 2] and out["d"] == [3, 4] and out["e"] == 7


def test_module_entry_point_builds_from_hydra_config(tmp_path):
    out = tmp_path / "ds"
    args = [f"out_dir={out}", "mode=fast", "progress=false"]
    for split in ("train", "id_test", "ood_test"):
        args.append(f"splits.{split}.n=1")
    for split in ("train", "ood_test"):  # id_test takes train's settings by interpolation
        args += [
            f"splits.{split}.shape=[24,48,48]",
            f"splits.{split}.scene.size_median_px=7",
            f"splits.{split}.scene.size_range_px=[3,14]",
        ]
    result = subprocess.run(
        [sys.executable, "-m", "particleseg.synth", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "dataset.json").read_text())
    assert "ood_differences" in meta and len(meta["samples"]) == 3
    assert not (tmp_path / "outputs").exists(), "the builder must not litter Hydra run folders"
