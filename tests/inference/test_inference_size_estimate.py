"""particle_size=model: the fixed-point size estimate, with a stand-in network of known answer.

The stand-in calls every bright voxel core and the rest background, so its particles are the
bright balls whatever the zoom: a scale-equivariant "model". The estimate must then find the
balls' mean equivalent diameter, settle in two passes from any first guess, and read only
blocks of the scan.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from particleseg.inference.model import LoadedModel
from particleseg.inference.size_estimate import (
    ModelSizeEstimate,
    estimate_size_with_model,
    estimate_warnings,
)
from particleseg.transforms.normalization import normalization_for_scan

POST = {
    "small_core_distance": 1.0,
    "small_core_fraction": 0.95,
    "small_core_max_distance": 8.0,
    "connectivity": 6,
}


class Threshold(nn.Module):
    """Logits of core where the normalized image is above 0.5, background elsewhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fg = (x - 0.5) * 20
        return torch.cat([-fg, fg, torch.full_like(x, -50.0)], dim=1)


class Nothing(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.ones_like(x), torch.zeros_like(x), torch.zeros_like(x)], dim=1)


def _model(net: nn.Module, target: float = 12.0) -> LoadedModel:
    return LoadedModel(
        net=net.eval(),
        normalization={"scheme": "percentile"},
        target_particle_size=target,
        border_thickness=1,
        patch_size=(32, 32, 32),
        path=Path("stand-in"),
    )


def balls(shape, step, radius, stretch=(1.0, 1.0, 1.0), seed=0):
    """Separate balls on a jittered lattice (stretched per axis by ``stretch``): image, labels."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=np.float32)
    labels = np.zeros(shape, np.uint32)
    centres = np.stack(
        np.meshgrid(*[np.arange(step[a] / 2, shape[a] - step[a] / 4, step[a]) for a in range(3)]),
        -1,
    ).reshape(-1, 3)
    for i, c in enumerate(centres + rng.uniform(-1, 1, centres.shape), start=1):
        d2 = sum(((grid[a] - c[a]) / stretch[a]) ** 2 for a in range(3))
        labels[d2 <= radius**2] = i
    noise = rng.normal(0, 4, shape)
    image = (100 + 60 * (labels > 0) + noise).astype(np.uint16)
    return image, labels


def true_mean_diameter(labels, voxel=1.0):
    counts = np.bincount(labels.ravel())[1:]
    return float(np.mean(np.cbrt(6 * counts[counts > 0] * voxel / math.pi)))


@pytest.mark.parametrize("first_guess", [None, 5.0, 30.0])
def test_settles_on_the_particles_mean_diameter_from_any_first_guess(first_guess):
    image, labels = balls((64, 64, 64), (16, 16, 16), 5.0)
    model = _model(Threshold())
    norm = normalization_for_scan(image, model.normalization)
    est = estimate_size_with_model(
        image, model, norm, None, first_guess, postprocess=POST, network_block=64
    )
    truth = true_mean_diameter(labels)
    assert est.diameter_px == pytest.approx(truth, rel=0.05)
    assert est.converged and len(est.passes) <= 3
    assert est.first_guess_source == ("model target size" if first_guess is None else "classical")
    assert est.passes[0].guess_px == (first_guess or 12.0)
    assert est.voxels_read <= len(est.passes) * image.size
    json.dumps(est.to_dict())  # goes into summary.json as it is


def test_anisotropic_voxels_give_the_diameter_per_axis():
    # balls of radius 5 (physical) in voxels twice as thick along Z: 2.5 voxels of radius in Z
    image, labels = balls((40, 80, 80), (10, 20, 20), 5.0, stretch=(0.5, 1.0, 1.0))
    model = _model(Threshold())
    norm = normalization_for_scan(image, model.normalization)
    est = estimate_size_with_model(
        image, model, norm, (2.0, 1.0, 1.0), 10.0, postprocess=POST, network_block=64
    )
    truth = true_mean_diameter(labels, voxel=2.0)  # in voxels of the finest axis
    assert est.diameter_px == pytest.approx(truth, rel=0.07)
    z, y, x = est.diameter_px_zyx
    assert y == x == est.diameter_px and z == pytest.approx(est.diameter_px / 2)


def test_blocks_are_read_not_the_whole_scan():
    image, _ = balls((96, 96, 96), (16, 16, 16), 5.0)
    model = _model(Threshold())
    norm = normalization_for_scan(image, model.normalization)
    est = estimate_size_with_model(
        image, model, norm, None, 10.0, postprocess=POST, network_block=32, max_passes=1
    )
    # at zoom 12/10, a 32^3 network block is a 27^3 scan block: 3 at least, then more until
    # 30 whole particles (about 2 whole 10-voxel balls in each), 8 at most of the 27 cells
    assert est.voxels_read == 8 * 27**3 < image.size
    assert not est.converged or est.passes[0].measured_px == pytest.approx(10.0, rel=0.05)


def test_blocks_are_the_cells_nearest_the_centre_without_overlap():
    from particleseg.inference.size_estimate import _blocks

    boxes = _blocks((128, 256, 256), (94, 94, 94), 3)  # a thin scan: cells side by side in Y/X
    assert len(boxes) == 3 and all(b[0] == slice(17, 111) for b in boxes)
    starts = {(b[1].start, b[2].start) for b in boxes}
    assert len(starts) == 3 and starts <= {(34, 34), (34, 128), (128, 34), (128, 128)}
    assert _blocks((10, 12, 14), (10, 12, 14), 3) == [(slice(0, 10), slice(0, 12), slice(0, 14))]


def test_an_estimate_that_does_not_settle_returns_the_median_of_its_passes(monkeypatch):
    import particleseg.inference.size_estimate as se

    swings = iter([16.0, 19.0, 15.0, 12.0])  # a model whose answer depends on the zoom

    def measured(*args, **kwargs):
        value = next(swings)
        return np.array([value] * 40), np.ones(40), 1000

    monkeypatch.setattr(se, "measure_blocks", measured)
    est = se.estimate_size_with_model(
        np.zeros((8, 8, 8)), _model(Threshold()), None, None, 18.0, postprocess=POST
    )
    assert not est.converged and [p.measured_px for p in est.passes] == [16, 19, 15, 12]
    assert est.diameter_px == 15.5 and est.voxels_read == 4000
    assert "did not settle" in estimate_warnings(est.to_dict())[0]


def test_no_particle_is_a_clear_error():
    image, _ = balls((48, 48, 48), (16, 16, 16), 5.0)
    model = _model(Nothing())
    norm = normalization_for_scan(image, model.normalization)
    with pytest.raises(ValueError, match="found no whole particle"):
        estimate_size_with_model(image, model, norm, None, 10.0, postprocess=POST)


def test_warnings_name_an_unsettled_or_thin_estimate():
    settled = ModelSizeEstimate(10.0, (10.0,) * 3, 8.0, "classical", (), True, 1).to_dict()
    settled["passes"] = [{"guess_px": 10.0, "measured_px": 10.1, "n_particles": 40}]
    assert estimate_warnings(settled) == []
    assert estimate_warnings(None) == [] and estimate_warnings({"method": "x"}) == []
    thin = {**settled, "converged": False}
    thin["passes"] = [{"guess_px": 10.0, "measured_px": 14.0, "n_particles": 3}]
    text = " ".join(estimate_warnings(thin))
    assert "did not settle" in text and "only 3 whole particles" in text


def test_predict_takes_the_model_measurement_with_the_image_estimate_as_first_guess(tmp_path):
    from particleseg.inference.inputs import resolve_scan
    from particleseg.inference.size_estimate import refine_particle_size

    image, labels = balls((48, 64, 64), (16, 16, 16), 5.0)
    np.save(tmp_path / "scan.npy", image)
    scan = resolve_scan(tmp_path / "scan.npy", particle_size="model")
    assert scan.size_source == "model" and scan.estimate["diameter_px"] > 0  # the first guess
    model = _model(Threshold())
    done = refine_particle_size(scan, model, {"overlap": 0.5}, POST)
    assert done.particle_size_px == pytest.approx((true_mean_diameter(labels),) * 3, rel=0.05)
    assert done.estimate["method"] == "model" and done.estimate["first_guess"] == scan.estimate
    assert done.estimate["passes"][0]["guess_px"] == pytest.approx(scan.estimate["diameter_px"])
    other = resolve_scan(tmp_path / "scan.npy", particle_size_px=7)
    assert refine_particle_size(other, model, {}, POST) is other
    with pytest.raises(ValueError, match=r"scan.npy: particle_size=model failed"):
        refine_particle_size(scan, _model(Nothing()), {}, POST)
