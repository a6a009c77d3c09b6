"""particle_properties on shapes with known answers; tolerances derived in the comments.

Notation: r (or R) the radius of the digitised ball in physical units, s the spacing, |s| the
voxel diagonal, h = |s| / 2 the half-diagonal. Gauss digitisation: voxel in iff its centre is
in the body.

Facts used (derivations):

* (V) Every point of B(c, r - h) lies in the box of its nearest voxel centre q, |q - x| <= h, so
  q is in B(c, r) and in the particle; every point of the voxel solid U is within h of a centre
  in B(c, r). Hence B(r - h) <= U <= B(r + h): the equivalent diameter is within 2r +- |s|.
* (F) The corner hull is P + box(s) (Minkowski sum, P the hull of the centres), so its width
  along a unit u is w_P(u) + sum_k |u_k| s_k. P lies in B(r): w <= 2r + |s| (Cauchy-Schwarz).
  The centre q nearest to x = c + (r - h) u is in P and h_U(u) >= u.q + sum |u_k| s_k / 2 >=
  u.x = u.c + r - h, since |u.(q - x)| <= sum |u_k| s_k / 2: w >= 2r - |s|. So Feret min and
  max lie in 2r +- |s|. For an ellipsoid the same holds with semi-axes a >= b >= c as long as
  its smallest radius of curvature c^2 / a >= h (so B(h) rolls freely inside).
* (A) U is star-shaped about c with radial function rho in [r - h, r + h]; the equivalent-
  ellipsoid axis of an isotropic covariance is 2 sqrt(5 lambda) = 2 sqrt(<rho^2>) with <.> the
  rho^3-weighted mean over directions, so each axis is within 2r +- |s|.
* (S) The hull of the centres of a Gauss-digitised convex body lies inside the body, so every
  voxel centre in that hull is a particle voxel: the digital convex volume equals the volume,
  solidity == 1 exactly (ball, ellipsoid, box).
* (M) Marching cubes on a binary mask (vertices at edge midpoints) overestimates the area of a
  digitised plane by a factor f(n) that depends on its orientation n; a ball covers all
  orientations uniformly, so its area is about f_mean 4 pi r^2, f_mean the mean of f over
  uniform n, computed by :func:`plane_factors` below (1.00 <= f <= 1.13, mean 1.087 for cubic
  voxels). The mesh lies in the shell r +- s_max / 2, which changes the area by a factor
  (1 +- s_max / (2r))^2, i.e. |A / (f_mean 4 pi r^2) - 1| <= s_max / r (to first order). With
  (V) for the volume, sphericity * f_mean = (R_V / R_A)^2 is 1 within 2 |s| / r.
* (C) A ball centred on a voxel centre is invariant under the 48 symmetries of the cube, so its
  covariance is a multiple of the identity: the three axes are equal to rounding.
"""

import itertools
import math

import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist
from skimage.measure import marching_cubes, mesh_surface_area

from particleseg.analysis import particle_properties
from particleseg.analysis._geometry import _area_table, feret_diameters, particle_geometry
from particleseg.analysis.properties import COLUMNS, INTENSITY_COLUMNS


def plane_factors(spacing, n_orient=200, width=32, seed=0):
    """Marching-cubes area / true area of digitised planes of random orientations (f(n), (M)).

    Each plane is a graph over its dominant axis; the mesh area of the cells above a window of
    width x width columns is compared with the plane's area over that window.
    """
    s = np.asarray(spacing, float)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_orient):
        n = rng.normal(size=3)
        n /= np.linalg.norm(n)
        order = np.argsort(-np.abs(n))  # graph over the axis of the largest normal component
        n_p, s_p = n[order], s[order]
        table = _area_table(tuple(float(v) for v in s_p))
        rise = width * (abs(n_p[1]) * s_p[1] + abs(n_p[2]) * s_p[2]) / (abs(n_p[0]) * s_p[0])
        height = int(np.ceil(rise)) + 6
        g = np.indices((height, width + 1, width + 1)).astype(float)
        offset = rng.random(3)
        value = sum(n_p[k] * (g[k] - g[k].mean() + offset[k]) * s_p[k] for k in range(3))
        m = (value <= 0).view(np.uint8)
        code = np.zeros((height - 1, width, width), np.uint8)
        for bit, (dz, dy, dx) in enumerate(itertools.product((0, 1), repeat=3)):
            code |= m[dz : dz + height - 1, dy : dy + width, dx : dx + width] << bit
        area = table[code].sum()
        out.append(area * abs(n_p[0]) / (width * width * s_p[1] * s_p[2]))
    return np.asarray(out)


def ball(shape, centre, radius, spacing=(1.0, 1.0, 1.0), label=1, dtype=np.uint32):
    """Gauss-digitised ball: voxels whose centres (index * spacing) are within radius."""
    g = np.indices(shape, dtype=np.float64)
    d2 = sum(((g[k] * spacing[k]) - centre[k]) ** 2 for k in range(3))
    out = np.zeros(shape, dtype)
    out[d2 <= radius**2] = label
    return out


def test_plane_factor_range():
    # Derivation (M): the constants quoted in the module docstring.
    f = plane_factors((1.0, 1.0, 1.0))
    assert 1.0 - 1e-9 <= f.min() and f.max() <= 1.13
    assert abs(f.mean() - 1.087) < 0.01


@pytest.mark.parametrize("radius", [10, 15])
def test_digitised_ball(radius):
    n = 2 * radius + 7
    c = n // 2  # on a voxel centre: cubic symmetry (C)
    labels = ball((n, n, n), (c, c, c), radius, label=5)
    t = particle_properties(labels)
    assert list(t["id"]) == [5]
    r = float(radius)
    diag = math.sqrt(3.0)
    count = int(np.count_nonzero(labels))
    assert t["volume"][0] == count  # exact: voxel count x unit voxel volume
    assert abs(t["equivalent_diameter"][0] - 2 * r) <= diag  # (V)
    assert 2 * r - diag <= t["feret_min"][0] <= t["feret_max"][0] <= 2 * r + diag  # (F)
    for axis in ("axis_major", "axis_intermediate", "axis_minor"):
        assert abs(t[axis][0] - 2 * r) <= diag  # (A)
    np.testing.assert_allclose(t["axis_minor"][0], t["axis_major"][0], rtol=1e-9)  # (C)
    np.testing.assert_allclose([t["elongation"][0], t["flatness"][0]], 1.0, rtol=1e-9)
    assert t["solidity"][0] == 1.0 and t["convex_volume"][0] == count  # (S)
    f_mean = plane_factors((1.0, 1.0, 1.0)).mean()
    area = t["surface_area"][0]
    assert abs(area / (f_mean * 4 * math.pi * r**2) - 1) <= 1.0 / r  # (M)
    assert abs(t["sphericity"][0] * f_mean - 1) <= 2 * diag / r  # (M) + (V)
    np.testing.assert_allclose(
        [t["centroid_z"][0], t["centroid_y"][0], t["centroid_x"][0]], c, atol=1e-12
    )
    assert not t["touches_edge"][0]


def test_ball_off_lattice_centre():
    # (V), (F), (S) hold for any centre, not only symmetric ones.
    r = 12.0
    labels = ball((32, 33, 34), (15.3, 16.1, 16.7), r)
    t = particle_properties(labels)
    diag = math.sqrt(3.0)
    assert abs(t["equivalent_diameter"][0] - 2 * r) <= diag
    assert 2 * r - diag <= t["feret_min"][0] <= t["feret_max"][0] <= 2 * r + diag
    assert t["solidity"][0] == 1.0


def test_anisotropic_spacing_gives_the_same_physical_values():
    # A ball of physical radius 15 sampled on (2, 1, 1) voxels and on (1, 1, 1) voxels: both
    # obey (V), (F), (A), (S) with their own |s|, so they agree within the sum of the bounds.
    r = 15.0
    aniso = (2.0, 1.0, 1.0)
    a = particle_properties(ball((22, 40, 40), (21.0, 19.5, 19.5), r, aniso), spacing=aniso)
    b = particle_properties(ball((40, 40, 40), (19.5, 19.5, 19.5), r))
    s_a, s_b = math.sqrt(6.0), math.sqrt(3.0)
    for t, diag in ((a, s_a), (b, s_b)):
        assert abs(t["equivalent_diameter"][0] - 2 * r) <= diag  # (V)
        assert 2 * r - diag <= t["feret_min"][0] <= t["feret_max"][0] <= 2 * r + diag  # (F)
        for axis in ("axis_major", "axis_intermediate", "axis_minor"):
            assert abs(t[axis][0] - 2 * r) <= diag  # (A)
        assert t["solidity"][0] == 1.0  # (S)
    for name in ("equivalent_diameter", "feret_min", "feret_max", "axis_major", "axis_minor"):
        assert abs(a[name][0] - b[name][0]) <= s_a + s_b
    assert a["volume"][0] == np.count_nonzero(ball((22, 40, 40), (21.0, 19.5, 19.5), r, aniso)) * 2
    np.testing.assert_allclose(a["centroid_z"][0], 21.0, atol=0.5)  # symmetric up to a voxel
    # (M) with the plane factor of the (2, 1, 1) lattice and s_max = 2.
    f_mean = plane_factors(aniso).mean()
    assert abs(a["surface_area"][0] / (f_mean * 4 * math.pi * r**2) - 1) <= 2.0 / r


def test_box():
    a, b, c = 6, 10, 15
    labels = np.zeros((12, 16, 21), np.int32)
    labels[3 : 3 + a, 2 : 2 + b, 4 : 4 + c] = 2
    t = particle_properties(labels)
    assert t["volume"][0] == a * b * c
    np.testing.assert_allclose(t["feret_max"][0], math.sqrt(a * a + b * b + c * c), rtol=1e-12)
    np.testing.assert_allclose(t["feret_min"][0], a, rtol=1e-12)
    # Uniform box of side L: variance L^2 / 12, equivalent-ellipsoid axis 2 sqrt(5 L^2 / 12).
    np.testing.assert_allclose(
        [t["axis_major"][0], t["axis_intermediate"][0], t["axis_minor"][0]],
        [2 * math.sqrt(5 * L * L / 12) for L in (c, b, a)],
        rtol=1e-12,
    )
    assert t["convex_volume"][0] == a * b * c and t["solidity"][0] == 1.0
    np.testing.assert_allclose(
        [t["centroid_z"][0], t["centroid_y"][0], t["centroid_x"][0]],
        [3 + (a - 1) / 2, 2 + (b - 1) / 2, 4 + (c - 1) / 2],
    )
    assert [t[f"bbox_{k}"][0] for k in ("z0", "y0", "x0", "z1", "y1", "x1")] == [
        3, 2, 4, 3 + a, 2 + b, 4 + c,
    ]  # fmt: skip
    mask = np.pad(labels == 2, 1).astype(np.float32)
    verts, faces, _, _ = marching_cubes(mask, 0.5)
    np.testing.assert_allclose(t["surface_area"][0], mesh_surface_area(verts, faces), rtol=1e-6)


def test_box_anisotropic_spacing():
    spacing = (2.0, 0.5, 1.5)
    labels = np.zeros((8, 9, 10), np.uint8)
    labels[1:5, 2:9, 3:6] = 1
    t = particle_properties(labels, spacing=spacing)
    sides = np.array([4, 7, 3]) * np.array(spacing)
    assert t["volume"][0] == pytest.approx(np.prod(sides))
    np.testing.assert_allclose(t["feret_max"][0], np.linalg.norm(sides), rtol=1e-12)
    np.testing.assert_allclose(t["feret_min"][0], sides.min(), rtol=1e-12)
    np.testing.assert_allclose(
        sorted([t["axis_major"][0], t["axis_intermediate"][0], t["axis_minor"][0]]),
        sorted(2 * np.sqrt(5 * sides**2 / 12)),
        rtol=1e-12,
    )
    mask = np.pad(labels == 1, 1).astype(np.float32)
    verts, faces, _, _ = marching_cubes(mask, 0.5, spacing=spacing)
    np.testing.assert_allclose(t["surface_area"][0], mesh_surface_area(verts, faces), rtol=1e-6)


def test_ellipsoid_axis_ratios():
    # Semi-axes (16, 8, 4) along z, y, x; smallest radius of curvature c^2 / a = 1 >= h = 0.87.
    semi = np.array([16.0, 8.0, 4.0])
    shape = (39, 23, 15)
    g = np.indices(shape, dtype=float) - (np.array(shape)[:, None, None, None] - 1) / 2
    labels = (sum((g[k] / semi[k]) ** 2 for k in range(3)) <= 1).astype(np.uint16)
    t = particle_properties(labels)
    h = math.sqrt(3.0) / 2
    a, b, c = semi
    # Each moment axis within 2 (semi +- h) (argument (A) in the ellipsoid's frame), hence
    # elongation = b'/a' in [(b - h)/(a + h), (b + h)/(a - h)], flatness likewise.
    assert (b - h) / (a + h) <= t["elongation"][0] <= (b + h) / (a - h)
    assert (c - h) / (b + h) <= t["flatness"][0] <= (c + h) / (b - h)
    for name, semi_axis in zip(
        ("axis_major", "axis_intermediate", "axis_minor"), semi, strict=True
    ):
        assert abs(t[name][0] - 2 * semi_axis) <= 2 * h
    assert 2 * a - 2 * h <= t["feret_max"][0] <= 2 * a + 2 * h  # (F)
    assert 2 * c - 2 * h <= t["feret_min"][0] <= 2 * c + 2 * h
    assert t["solidity"][0] == 1.0  # (S)
    np.testing.assert_allclose(t["feret_ratio"][0], t["feret_min"][0] / t["feret_max"][0])


def test_touches_edge_flags_only_cut_particles():
    labels = np.zeros((20, 20, 20), np.uint32)
    labels[0:4, 5:9, 5:9] = 1  # on the z = 0 face
    labels[8:12, 8:12, 8:12] = 2  # inside
    labels[10:14, 15:20, 2:6] = 3  # on the y = 19 face
    labels[15:18, 2:5, 17:20] = 4  # on the x = 19 face
    t = particle_properties(labels)
    assert t["touches_edge"].tolist() == [True, False, True, True]
    assert t["touches_edge"].dtype == np.bool_


def test_intensity_statistics_match_numpy_on_the_mask():
    rng = np.random.default_rng(3)
    x = ndi.gaussian_filter(rng.random((30, 32, 34)), 2)
    labels, n = ndi.label(x > 0.52)
    image = (rng.normal(1000, 300, labels.shape)).astype(np.float32)
    t = particle_properties(labels, image, hist_bins=6)
    assert len(t["id"]) == n
    lo, hi = float(image.min()), float(image.max())
    for row, pid in enumerate(t["id"]):
        v = image[labels == pid].astype(np.float64)
        np.testing.assert_allclose(t["intensity_min"][row], v.min())
        np.testing.assert_allclose(t["intensity_max"][row], v.max())
        np.testing.assert_allclose(t["intensity_mean"][row], v.mean(), rtol=1e-10)
        np.testing.assert_allclose(t["intensity_std"][row], v.std(), rtol=1e-7, atol=1e-6)
        counts, _ = np.histogram(v, bins=6, range=(lo, hi))
        hist = [t[f"hist_{b}"][row] for b in range(6)]
        np.testing.assert_allclose(hist, counts / len(v), rtol=1e-12)
    # a fixed range: values outside it are in no bin
    t2 = particle_properties(labels, image, hist_bins=4, hist_range=(900.0, 1100.0))
    v = image[labels == t2["id"][0]].astype(np.float64)
    counts, _ = np.histogram(v, bins=4, range=(900.0, 1100.0))
    np.testing.assert_allclose([t2[f"hist_{b}"][0] for b in range(4)], counts / len(v))


def test_columns_order_dtypes_and_sorted_ids():
    labels = np.zeros((10, 10, 10), np.int64)
    labels[1:3, 1:3, 1:3] = 40
    labels[5:8, 5:8, 5:8] = 7
    t = particle_properties(labels)
    assert tuple(t) == COLUMNS
    assert t["id"].tolist() == [7, 40]
    assert t["id"].dtype == np.int64 and t["bbox_z0"].dtype == np.int64
    assert all(v.shape == (2,) for v in t.values())
    ti = particle_properties(labels, labels.astype(np.uint8), hist_bins=3)
    assert tuple(ti) == COLUMNS + INTENSITY_COLUMNS + ("hist_0", "hist_1", "hist_2")


def test_empty_volume_gives_empty_columns():
    t = particle_properties(np.zeros((4, 5, 6), np.uint16), np.zeros((4, 5, 6), np.uint8))
    assert all(len(v) == 0 for v in t.values())
    assert "intensity_mean" in t


def test_single_voxel_and_flat_particles():
    labels = np.zeros((9, 12, 12), np.uint16)
    labels[4, 1, 1] = 1  # one voxel
    labels[2, 4:8, 2:10] = 2  # one voxel thick plate (coplanar centres)
    labels[6, 4:10, 3] = 3  # a line of voxels (collinear centres)
    labels[6, 4:6, 6:11] = 4  # flat L: hull in its plane holds more voxels
    labels[6, 6:9, 6:8] = 4
    t = particle_properties(labels)
    one = {k: v[0] for k, v in t.items()}
    assert one["volume"] == 1 and one["convex_volume"] == 1
    np.testing.assert_allclose([one["feret_max"], one["feret_min"]], [math.sqrt(3), 1.0])
    np.testing.assert_allclose(one["axis_major"], 2 * math.sqrt(5 / 12))
    plate = {k: v[1] for k, v in t.items()}
    np.testing.assert_allclose(plate["feret_min"], 1.0)
    np.testing.assert_allclose(plate["feret_max"], math.sqrt(1 + 16 + 64))
    assert plate["solidity"] == 1.0
    line = {k: v[2] for k, v in t.items()}
    assert line["solidity"] == 1.0 and line["feret_max"] == pytest.approx(math.sqrt(1 + 1 + 36))
    ell = {k: v[3] for k, v in t.items()}
    # L of 10 + 6 voxels; the hull of its centres in the plane z = 6 spans rows 4..8, columns
    # 6..10: the lattice points with x <= 7 or y <= 5 or under the diagonal (8, 7)-(5, 10).
    assert ell["volume"] == 16
    plane = np.zeros((12, 12), bool)
    yy, xx = np.indices((12, 12))
    plane[(yy >= 4) & (yy <= 8) & (xx >= 6) & (xx <= 10)] = True
    plane &= (xx <= 7) | (yy <= 5) | (yy + xx <= 15)
    assert ell["convex_volume"] == plane.sum()
    assert all(np.isfinite(v).all() for v in t.values())


def test_feret_min_is_the_exact_minimum_width():
    # Feret min is never above the width along any direction (sampled densely), and the
    # densest sampling comes within a small margin of it; same for the flat-particle path.
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(100_000, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    for trial in range(6):
        x = ndi.gaussian_filter(rng.random((18, 20, 22)), 2) > 0.5
        lab, _ = ndi.label(x)
        mask = lab == 1
        mask = mask[ndi.find_objects(mask.astype(int))[0]]
        spacing = tuple(rng.uniform(0.5, 2.0, 3)) if trial % 2 else (1.0, 1.0, 1.0)
        fmax, fmin = feret_diameters(mask, spacing)
        s = np.asarray(spacing)
        corners = np.argwhere(mask)[:, None, :] + np.indices((2, 2, 2)).reshape(3, -1).T - 0.5
        corners = corners.reshape(-1, 3) * s
        vertices = corners[ConvexHull(corners).vertices]
        widths = np.ptp(vertices @ dirs.T, axis=0)
        assert fmin <= widths.min() + 1e-9
        assert widths.min() - fmin < 0.02 * fmax
        np.testing.assert_allclose(fmax, pdist(vertices).max(), rtol=1e-12)


def test_surface_area_equals_marching_cubes_on_the_crop():
    rng = np.random.default_rng(1)
    x = ndi.gaussian_filter(rng.random((20, 22, 24)), 2) > 0.5
    for spacing in ((1.0, 1.0, 1.0), (1.7, 0.6, 1.1)):
        mask = x.copy()
        verts, faces, _, _ = marching_cubes(
            np.pad(mask, 1).astype(np.float32), 0.5, spacing=spacing
        )
        geometry = particle_geometry(mask, spacing)
        np.testing.assert_allclose(
            geometry.surface_area, mesh_surface_area(verts, faces), rtol=1e-6
        )


@pytest.mark.parametrize(
    ("labels", "image", "message"),
    [
        (np.zeros((4, 4)), None, "3D"),
        (np.zeros((4, 4, 4), np.float32), None, "integer dtype"),
        (np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 5)), r"image shape \(4, 4, 5\)"),
        (np.full((4, 4, 4), -1, np.int16), None, ">= 0"),
        (np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 4), np.complex64), "numeric"),
    ],
)
def test_bad_input_raises(labels, image, message):
    with pytest.raises(ValueError, match=message):
        particle_properties(labels, image)


def test_bad_spacing_and_histogram_raise():
    labels = np.ones((2, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="spacing"):
        particle_properties(labels, spacing=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="hist_range"):
        particle_properties(labels, labels, hist_range=(3.0, 1.0))
    with pytest.raises(ValueError, match="hist_bins"):
        particle_properties(labels, labels, hist_bins=0)
