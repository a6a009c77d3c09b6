import ast
import copy
import subprocess
import sys
import textwrap
from pathlib import Path

import cc3d
import numpy as np
import pytest
from scipy import ndimage as ndi

from particleseg.io import read_sample, validate_dataset
from particleseg.synth import independent as ind
from particleseg.synth.dataset import mean_equivalent_diameter
from particleseg.synth.independent_geometry import (
    container_mask,
    finalize_labels,
    touching_fraction,
)
from particleseg.synth.independent_imaging import box_kernel, lorentzian_kernel

SYNTH = Path(ind.__file__).parent
MODULES = ["independent", "independent_geometry", "independent_imaging"]
# the only particleseg.synth modules the split may load: itself, and dataset.py for sample_seed and
# mean_equivalent_diameter (with phases.py, which dataset.py imports for its phase codes)
ALLOWED = {f"particleseg.synth.{m}" for m in [*MODULES, "dataset", "phases"]}
# the training generator's geometry and CT code, blocked outright in the run-time check
TRAINING = ["_shapes", "particles", "_placement", "scene", "ct", "ct_fast", "_ct_kernels"]
TRAINING += ["_builder", "granular", "ellipsoids", "_pieces", "_raster", "_features", "sample"]


def tiny_config(**top) -> dict:
    """The shipped config at a tiny shape: the same ranges, smaller grains."""
    cfg = copy.deepcopy(ind.load_config(ind.CONFIG))
    cfg.update({"n": 2, "shape": [16, 40, 40], "progress": False, **top})
    cfg["geometry"].update(size_px=8, min_voxels=10)
    return cfg


def render(family: str, seed: int, cfg: dict | None = None):
    checked = ind.validate_config(tiny_config() if cfg is None else cfg)
    return ind.render_independent_sample(checked["shape"], family, checked, seed)


@pytest.mark.parametrize("family", ind.FAMILIES)
def test_labels_are_consecutive_and_one_6_connected_piece_each(family):
    image, labels, info = render(family, seed=3)
    assert image.dtype == np.uint16 and labels.dtype == np.uint32
    assert image.shape == labels.shape == (16, 40, 40)
    n = int(labels.max())
    assert n >= 2 and info["n_particles"] == n
    assert np.array_equal(np.unique(labels), np.arange(n + 1))
    assert cc3d.connected_components(labels, connectivity=6).max() == n
    assert info["family"] == family and 0.0 <= info["touching_fraction"] <= 1.0


def test_same_seed_same_sample_other_seed_other_sample():
    a_image, a_labels, a_info = render("voronoi", seed=11)
    b_image, b_labels, b_info = render("voronoi", seed=11)
    np.testing.assert_array_equal(a_image, b_image)
    np.testing.assert_array_equal(a_labels, b_labels)
    assert a_info["imaging"] == b_info["imaging"]
    c_image, c_labels, _ = render("voronoi", seed=12)
    assert not np.array_equal(a_labels, c_labels)
    assert not np.array_equal(a_image, c_image)


def test_gravity_packing_is_deterministic_too():
    # porespy's generators are seeded from the sample's generator, not from global state
    _, a, _ = render("gravity", seed=5)
    np.random.seed(0)  # noqa: NPY002 - global state must not matter
    _, b, _ = render("gravity", seed=5)
    np.testing.assert_array_equal(a, b)


def test_built_dataset_loads_validates_and_refuses_to_be_overwritten(tmp_path):
    path = ind.build_independent_dataset(tmp_path, tiny_config())
    dataset = validate_dataset(tmp_path, check_arrays=True)
    assert path == tmp_path / "dataset.json"
    assert [e.split for e in dataset.samples] == ["ood_test", "ood_test"]
    assert dataset.extra["ood_differences"] == ind.OOD_DIFFERENCES
    assert dataset.extra["seed"] == tiny_config()["seed"]
    assert dataset.extra["config"]["shape"] == [16, 40, 40]
    assert "porespy" in dataset.description
    for entry in dataset.samples:
        image, labels = (np.asarray(a) for a in read_sample(entry))
        assert image.dtype == np.uint16 and labels.dtype == np.uint32
        expected = mean_equivalent_diameter(labels) * entry.metadata.spacing[0]
        assert entry.metadata.particle_size == pytest.approx(expected, rel=1e-3)
    doc = (tmp_path / "dataset.json").read_text()
    assert '"family": "voronoi"' in doc and '"filter":' in doc
    with pytest.raises(ValueError, match="already"):
        ind.build_independent_dataset(tmp_path, tiny_config())


def test_particles_stand_out_of_the_matrix_in_a_high_contrast_scan():
    cfg = tiny_config()
    cfg["materials"].update(material_mu_range=[0.05, 0.08], matrix="resin", n_bubbles=0)
    cfg["imaging"].update(photons=5000.0, bad_pixels=0)
    image, labels, _ = render("voronoi", seed=2, cfg=cfg)
    image = image.astype(np.float64)
    grains = ndi.binary_erosion(labels > 0, iterations=1)
    inside = ndi.binary_erosion(container_mask(labels.shape, 0.92), iterations=2)
    matrix = inside & (ndi.distance_transform_edt(labels == 0) > 3)
    assert grains.sum() > 50 and matrix.sum() > 50
    noise = image[matrix].std()
    assert image[grains].mean() - image[matrix].mean() > 3 * noise


def test_modules_do_not_import_the_training_generator():
    # static: the split's modules import no particleseg.synth module outside ALLOWED
    for module in MODULES:
        tree = ast.parse((SYNTH / f"{module}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not node.level, (module, "relative import")
                names = [node.module] if node.module != "particleseg.synth" else []
                names += [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.startswith("particleseg.synth"):
                    assert name in ALLOWED or name.rsplit(".", 1)[0] in ALLOWED, (module, name)
    # at run time: a build with the training modules made unimportable and the package's
    # __init__ (which imports them) bypassed; afterwards only ALLOWED modules are loaded
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys, types, tempfile
        TRAINING = {["particleseg.synth." + t for t in TRAINING]!r}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name in TRAINING or name.startswith("particleseg.synth._granular"):
                    raise ImportError("training module imported: " + name)
        sys.meta_path.insert(0, Block())
        import particleseg
        package = types.ModuleType("particleseg.synth")
        package.__path__ = [{str(SYNTH)!r}]
        sys.modules["particleseg.synth"] = package
        from particleseg.synth import independent as ind
        cfg = ind.load_config(ind.CONFIG)
        cfg.update(n=3, shape=[12, 32, 32], progress=False)
        cfg["geometry"].update(size_px=7, min_voxels=5)
        ind.build_independent_dataset(tempfile.mkdtemp(), cfg)
        loaded = sorted(m for m in sys.modules if m.startswith("particleseg.synth."))
        print(loaded)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = set(ast.literal_eval(result.stdout.strip().splitlines()[-1]))
    assert "particleseg.synth.independent_imaging" in loaded
    assert loaded <= ALLOWED, loaded - ALLOWED


@pytest.mark.parametrize(
    ("group", "key", "value"),
    [
        ("imaging", "photons", -5.0),
        ("imaging", "filter", "ramp"),
        ("imaging", "filter", {"choice": ["cosine", "hann"]}),
        ("imaging", "bad_pixels", 1.5),
        ("geometry", "size_px", {"uniform": [1, 3]}),
        ("geometry", "touching", {"uniform": [0.5]}),
        ("geometry", "shape_weights", 1.0),
        ("materials", "material_mu_range", [0.05, 0.01]),
        ("materials", "matrix", "oil"),
        ("materials", "n_materials", {"loguniform": [1, 4]}),
    ],
)
def test_bad_config_values_raise_a_value_error_naming_the_key(group, key, value):
    cfg = tiny_config()
    cfg[group][key] = value
    with pytest.raises(ValueError, match=f"'{group}.{key}'"):
        ind.validate_config(cfg)


@pytest.mark.parametrize(
    ("key", "value"),
    [("shape", [16, 40, 48]), ("n", 0), ("families", ["spheres"]), ("seed", "x"), ("extra", 1)],
)
def test_bad_top_level_values_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"'{key}'"):
        ind.validate_config(tiny_config(**{key: value}))


def test_missing_group_key_is_named():
    cfg = tiny_config()
    del cfg["imaging"]["crosstalk"]
    with pytest.raises(ValueError, match="'imaging.crosstalk'"):
        ind.validate_config(cfg)


def test_shipped_config_is_the_fixed_split():
    cfg = ind.validate_config(ind.load_config(ind.CONFIG))
    assert 6 <= cfg["n"] <= 8 and cfg["shape"] == [96, 160, 160]
    assert cfg["out_dir"] == "data/ood_independent"
    assert set(cfg["families"]) == set(ind.FAMILIES)


def test_command_line_bad_input_exits_2_without_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    cfg = tiny_config()
    cfg["imaging"]["photons"] = "many"
    import yaml

    bad.write_text(yaml.safe_dump(cfg))
    result = subprocess.run(
        [sys.executable, "-m", "particleseg.synth.independent", "--config", str(bad)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "imaging.photons" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "dataset.json").write_text("{}")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(tiny_config()))
    argv = ["--config", str(good), "--out-dir", str(tmp_path / "out")]
    assert ind.main(argv) == 2
    assert "already there" in capsys.readouterr().err
    assert ind.main(["--config", str(tmp_path / "missing.yaml")]) == 2


def test_finalize_keeps_the_largest_piece_and_renumbers():
    labels = np.zeros((1, 3, 9), np.uint32)
    labels[0, 1, 0:3] = 7  # 3 voxels
    labels[0, 1, 4] = 7  # a 1-voxel piece of the same label
    labels[0, 0, 6:9] = 9
    labels[0, 2, 8] = 4  # too small
    out = finalize_labels(labels, min_voxels=2)
    assert out.dtype == np.uint32 and out.max() == 2
    assert (out[0, 1, 0:3] == 1).all() and out[0, 1, 4] == 0
    assert (out[0, 0, 6:9] == 2).all() and out[0, 2, 8] == 0


def test_touching_fraction_counts_face_contacts():
    labels = np.zeros((1, 1, 8), np.uint32)
    labels[0, 0, [0, 1, 3, 6]] = [1, 2, 3, 4]
    assert touching_fraction(labels) == pytest.approx(0.5)
    assert touching_fraction(np.zeros((2, 2, 2), np.uint32)) == 0.0


def test_psf_kernels_are_normalised_and_centred():
    for width in (1.0, 1.5, 2.0, 2.7):
        k = box_kernel(width)
        assert k.sum() == pytest.approx(1.0) and np.allclose(k, k[::-1])
    assert np.array_equal(box_kernel(1.0), [1.0])
    np.testing.assert_allclose(box_kernel(1.5), np.array([0.25, 1.0, 0.25]) / 1.5)
    k = lorentzian_kernel(0.4)
    assert k.sum() == pytest.approx(1.0) and k.argmax() == k.size // 2
