import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage as ndi

from particleseg.analysis import ParticleSizeEstimate, estimate_particle_size
from particleseg.analysis.particle_size import plan_blocks
from particleseg.synth.dataset import make_sample, mean_equivalent_diameter

SHAPE = (56, 96, 96)


def render(centers, diameters, *, shape=SHAPE, spacing=(1.0, 1.0, 1.0), noise=120.0, seed=0):
    """Bright balls (physical diameters) in noisy resin: (uint16 image, uint32 labels).

    Where balls overlap, a voxel goes to the ball whose surface is nearest (a neck between
    touching balls). The image is resin 1000, particles 3000, blurred by one voxel, plus noise.
    """
    grid = (
        np.indices(shape, dtype=np.float32) * np.asarray(spacing, np.float32)[:, None, None, None]
    )
    labels = np.zeros(shape, np.uint32)
    best = np.full(shape, np.inf, np.float32)
    for i, (c, d) in enumerate(zip(centers, diameters, strict=True), start=1):
        dist = np.sqrt(sum((grid[a] - c[a]) ** 2 for a in range(3))) - d / 2
        take = (dist <= 0) & (dist < best)
        labels[take] = i
        best[take] = dist[take]
    rng = np.random.default_rng(seed)
    image = ndi.gaussian_filter(np.where(labels > 0, 3000.0, 1000.0), 1.0 / np.asarray(spacing))
    image = image + rng.normal(0.0, noise, shape)
    return np.clip(image, 0, 65535).astype(np.uint16), labels


def lattice(shape, step, margin, spacing=(1.0, 1.0, 1.0)):
    """Centres (physical units) on a regular grid, at least ``margin`` from every face."""
    axes = [
        np.arange(margin, n * sp - margin + 1e-6, step)
        for n, sp in zip(shape, spacing, strict=True)
    ]
    return [tuple(c) for c in np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)]


def relative_error(estimate, labels):
    return abs(estimate.diameter_px / mean_equivalent_diameter(labels) - 1)


def test_separate_balls_give_their_diameter():
    centers = lattice(SHAPE, 19, 9)
    image, labels = render(centers, [12.0] * len(centers))
    est = estimate_particle_size(image)
    assert isinstance(est, ParticleSizeEstimate)
    assert relative_error(est, labels) < 0.10
    assert est.n_particles_used == pytest.approx(len(centers), abs=2)
    assert est.foreground_fraction == pytest.approx((labels > 0).mean(), rel=0.2)
    assert 1000 < est.threshold < 3000
    assert est.voxels_read == image.size
    assert est.diameter_px_zyx == pytest.approx((est.diameter_px,) * 3)


def touching_pairs(d, shape=SHAPE):
    """Centres of pairs of balls of diameter ``d`` whose surfaces meet, along X."""
    centers = []
    for z in np.arange(10, shape[0] - 9, 24):
        for y in np.arange(10, shape[1] - 9, 24):
            for x in np.arange(d / 2 + 3, shape[2] - 1.5 * d - 3, 2 * d + 6):
                centers += [(z, y, x), (z, y, x + d)]
    return centers


@pytest.mark.parametrize("d", [8.0, 12.0, 16.0])
def test_touching_balls_are_split(d):
    centers = touching_pairs(d)
    image, labels = render(centers, [d] * len(centers), seed=1)
    assert len(centers) >= 24
    est = estimate_particle_size(image)
    assert relative_error(est, labels) < 0.10
    assert est.n_particles_used >= 0.85 * len(centers)


def test_touching_and_separate_balls_together():
    separate = [c for c in lattice(SHAPE, 19, 9) if c[0] > 40]
    pairs = [c for c in touching_pairs(12.0) if c[0] < 30]
    centers = separate + pairs
    image, labels = render(centers, [12.0] * len(centers), seed=7)
    est = estimate_particle_size(image)
    assert relative_error(est, labels) < 0.10


def test_two_populations_give_a_value_between():
    centers = lattice(SHAPE, 19, 9)
    diameters = [8.0 if i % 2 else 15.0 for i in range(len(centers))]
    image, labels = render(centers, diameters, seed=2)
    est = estimate_particle_size(image)
    assert 8.0 < est.diameter_px < 15.0
    assert relative_error(est, labels) < 0.10


def test_anisotropic_spacing_returns_finest_axis_voxels():
    spacing = (2.0, 1.0, 1.0)
    shape = (32, 96, 96)
    centers = lattice(shape, 19, 9, spacing)
    image, labels = render(centers, [12.0] * len(centers), shape=shape, spacing=spacing, seed=3)
    est = estimate_particle_size(image, spacing=spacing)
    assert est.diameter_px == pytest.approx(12.0, rel=0.1)
    assert est.diameter_px_zyx[0] == pytest.approx(est.diameter_px / 2)
    assert est.diameter_px_zyx[1] == pytest.approx(est.diameter_px)


class RecordingArray:
    """Array-like that records how many voxels each read touches, and refuses whole reads."""

    def __init__(self, array):
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = array.ndim
        self.voxels = 0
        self.reads = 0

    def __getitem__(self, key):
        out = self.array[key]
        self.voxels += out.size
        self.reads += 1
        return out

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole array was converted")


def test_lazy_read_touches_at_most_max_voxels():
    shape = (150, 96, 96)
    centers = lattice(shape, 19, 9)
    image, labels = render(centers, [12.0] * len(centers), shape=shape, seed=4)
    recorder = RecordingArray(image)
    est = estimate_particle_size(recorder, max_voxels=600_000)
    assert 0 < recorder.voxels <= 600_000
    assert est.voxels_read == recorder.voxels
    assert relative_error(est, labels) < 0.15


@pytest.mark.parametrize(
    ("shape", "budget"),
    [((96, 160, 160), 10**8), ((600, 500, 500), 32_000_000), ((50, 3000, 3000), 32_000_000)],
)
def test_plan_blocks_stays_within_the_budget(shape, budget):
    blocks = plan_blocks(shape, budget)
    total = sum(math.prod(s.stop - s.start for s in b) for b in blocks)
    assert total <= budget
    for b in blocks:
        assert all(0 <= s.start < s.stop <= n for s, n in zip(b, shape, strict=True))
    starts = sorted(b[0].start for b in blocks)  # blocks do not overlap along Z
    stops = sorted(b[0].stop for b in blocks)
    assert all(stop <= start for stop, start in zip(stops[:-1], starts[1:], strict=True))


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((32, 32)), "3D"),
        (np.zeros((2, 16, 16, 16)), "3D"),
        (np.full((16, 32, 32), 7, np.uint16), "constant"),
    ],
)
def test_bad_images_are_refused(image, match):
    with pytest.raises(ValueError, match=match):
        estimate_particle_size(image)


def test_nan_is_refused():
    image = np.random.default_rng(0).normal(0, 1, (16, 32, 32)).astype(np.float32)
    image[3, 4, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        estimate_particle_size(image)


def test_bad_spacing_is_refused():
    image = np.random.default_rng(0).normal(0, 1, (16, 32, 32))
    with pytest.raises(ValueError, match="spacing"):
        estimate_particle_size(image, spacing=(1.0, 0.0, 1.0))


@pytest.mark.parametrize("kind", ["noise", "resin_cylinder"])
def test_no_foreground_asks_for_an_explicit_size(kind):
    rng = np.random.default_rng(5)
    shape = (40, 80, 80)
    if kind == "noise":
        image = rng.normal(1000, 50, shape)
    else:  # a resin cylinder in air, without particles
        yy, xx = np.mgrid[: shape[1], : shape[2]]
        inside = np.hypot(yy - 39.5, xx - 39.5) < 34
        image = ndi.gaussian_filter(np.where(inside, 1000.0, 200.0)[None].repeat(shape[0], 0), 1)
        image = np.clip(image + rng.normal(0, 60, shape), 0, None).astype(np.uint16)
    with pytest.raises(ValueError, match="particle_size"):
        estimate_particle_size(image)


def test_to_dict_is_json_serialisable():
    centers = lattice(SHAPE, 19, 9)
    image, _ = render(centers, [10.0] * len(centers), seed=6)
    d = estimate_particle_size(image).to_dict()
    assert set(d) >= {"diameter_px", "method", "n_particles_used", "foreground_fraction"}
    assert json.loads(json.dumps(d)) == d


def test_synthetic_sample_within_25_percent():
    scene = {
        "size_median_px": 11.0,
        "size_sigma": 0.35,
        "size_range_px": [3, 30],
        "shape_weights": {"polyhedron": 0.35, "star": 0.25, "concave": 0.15, "ellipsoid": 0.25},
        "material_mu_range": [0.009, 0.04],
        "packing": 0.2,
        "touching_fraction": 0.06,
    }
    ct = {"photons": 1000, "beam_hardening": 0.05, "ring_strength": 0.002, "detector_blur": 0.8}
    image, labels, _ = make_sample((48, 96, 96), scene, ct, "fast", seed=11)
    est = estimate_particle_size(image)
    assert relative_error(est, labels) < 0.25


def test_does_not_import_torch():
    code = "import sys, particleseg.analysis; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
