"""Size-tolerant inference: the band rule, the band stored in the model, and its measurement."""

from __future__ import annotations

import json

import pytest
import torch

from particleseg.inference.cost import make_plan
from particleseg.inference.export import export_model
from particleseg.inference.inputs import ScanInput
from particleseg.inference.model import CHECKPOINT_KEY, load_checkpoint
from particleseg.inference.size_band import (
    band_zoom,
    check_band,
    choose_band,
    main,
    network_particle_size,
)
from particleseg.synth.dataset import build_dataset


@pytest.mark.parametrize(
    ("size", "band", "rule", "expected"),
    [
        (10.0, None, "band", 24.0),  # no band: the target size, as before
        (10.0, (12.0, 36.0), "target", 24.0),  # the old rule on request
        (20.0, (12.0, 36.0), "band", 20.0),  # inside the band: no resize
        (8.0, (12.0, 36.0), "band", 12.0),  # small particles: only up to the band
        (50.0, (12.0, 36.0), "band", 36.0),  # large ones: only down to it
    ],
)
def test_network_size_is_the_scan_size_clipped_into_the_band(size, band, rule, expected):
    assert network_particle_size((size,) * 3, 24.0, band, rule) == expected
    assert band_zoom((size,) * 3, 24.0, band, rule) == pytest.approx((expected / size,) * 3)


def test_anisotropic_voxels_keep_the_finest_axis_and_make_particles_isotropic():
    # 8 voxels across along Y and X, 4 along the twice-as-thick Z: Y/X stay, Z is doubled
    assert band_zoom((4.0, 8.0, 8.0), 24.0, (6.0, 30.0)) == pytest.approx((2.0, 1.0, 1.0))
    assert band_zoom((4.0, 8.0, 8.0), 24.0, (12.0, 30.0)) == pytest.approx((3.0, 1.5, 1.5))


def test_bad_bands_and_rules_are_refused():
    assert check_band(None, 24) is None and check_band([12, 36], 24) == (12.0, 36.0)
    for band in ([30, 40], [12], ["a", 3], [0, 30], [12, float("inf")]):
        with pytest.raises(ValueError, match="size_band"):
            check_band(band, 24)
    with pytest.raises(ValueError, match="inference.resize"):
        network_particle_size((10,) * 3, 24, None, "exact")


def test_choose_band_is_the_run_around_the_target_within_the_tolerance():
    ratios = [0.5, 0.75, 1.0, 1.5, 2.0]
    assert choose_band(ratios, [0.5, 0.79, 0.80, 0.785, 0.6], 0.02) == [0.75, 1.5]
    # a good score beyond a bad one does not widen the band: it must be contiguous
    assert choose_band(ratios, [0.80, 0.5, 0.80, 0.80, 0.80], 0.02) == [1.0, 2.0]
    with pytest.raises(ValueError, match="must hold 1.0"):
        choose_band([0.5, 2.0], [0.1, 0.2], 0.02)


def test_the_plan_resizes_into_the_stored_band_only(tiny_checkpoint, tmp_path):
    banded = export_model(tiny_checkpoint, tmp_path / "banded.ckpt", size_band=[6.0, 16.0])
    plain, model = load_checkpoint(tiny_checkpoint), load_checkpoint(banded)
    assert plain.size_band is None and model.size_band == (6.0, 16.0)
    scan = ScanInput("s", tmp_path / "s.npy", (40, 40, 40), "uint16", None, None, (4.0,) * 3, "x")
    _, zoom = make_plan(scan, plain, {})
    assert zoom == (2.0, 2.0, 2.0)  # target 8 from 4 voxels
    plan, zoom = make_plan(scan, model, {})
    assert zoom == (1.5, 1.5, 1.5) and plan.network_shape == (60, 60, 60)  # up to the band's 6
    assert make_plan(scan, model, {"resize": "target"})[1] == (2.0, 2.0, 2.0)
    # a band without the target size in the file is refused, naming the file
    ckpt = torch.load(banded, weights_only=True)
    ckpt[CHECKPOINT_KEY]["size_band"] = [10.0, 16.0]
    torch.save(ckpt, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match=r"bad.ckpt: size_band must hold the target size 8"):
        load_checkpoint(tmp_path / "bad.ckpt")


def test_measure_the_band_on_labelled_crops_and_store_it(tiny_checkpoint, tmp_path, capsys):
    data = tmp_path / "val"
    scene = {"size_median_px": 7, "size_range_px": [5, 10], "packing": 0.25}
    split = {"n": 2, "shape": [20, 32, 32], "scene": scene, "ct": {"photons": 3000}}
    build_dataset(data, {"val": split}, mode="fast", seed=3, progress=False)
    out = tmp_path / "band.json"
    main(
        [
            str(tiny_checkpoint),
            str(data),
            str(out),
            "--ratios",
            "0.5",
            "1",
            "2",
            "--crop-edge",
            "24",
        ]
    )
    result = json.loads(out.read_text())
    assert result["ratios"] == [0.5, 1.0, 2.0] and sorted(result["per_scan"]) == [
        "val_000",
        "val_001",
    ]
    assert all(len(s) == 3 and all(0 <= f <= 1 for f in s) for s in result["per_scan"].values())
    low, high = choose_band(result["ratios"], result["mean_f1_instance"], result["tolerance"])
    assert result["band"] == [low * 8.0, high * 8.0] and low <= 1.0 <= high
    assert "band" in capsys.readouterr().out
    # the crops are predicted at ratio x target: the crop of ratio 2 is half the size
    crops = {r: (tmp_path / f"band_work/val_000-r{r}/crop.npy").stat().st_size for r in (0.5, 2)}
    assert crops[0.5] > crops[2]
    from particleseg.inference.export import main as export

    export([str(tiny_checkpoint), str(tmp_path / "m.ckpt"), "--size-band", str(out)])
    assert load_checkpoint(tmp_path / "m.ckpt").size_band == tuple(result["band"])
