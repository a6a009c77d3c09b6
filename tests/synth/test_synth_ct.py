from dataclasses import replace

import numpy as np
import pytest

from particleseg.synth.ct import (
    CTParams,
    FastCTParams,
    simulate_ct,
    simulate_ct_fast,
    to_uint16,
)

N = 64
CLEAN = CTParams(photons=None, beam_hardening=0.0, detector_blur=0.0, ring_strength=0.0)
FAST_CLEAN = FastCTParams(noise_sigma=0.0, cupping=0.0, ring_strength=0.0)


def _grid(n=N):
    y, x = np.mgrid[:n, :n] - (n - 1) / 2
    return y, x, np.hypot(y, x)


def cylinder(mu=0.005, radius=28.0, nz=4, n=N):
    """(nz, n, n) resin cylinder along Z."""
    r = _grid(n)[2]
    return np.repeat(((r <= radius) * mu).astype(np.float32)[None], nz, axis=0)


def dense_pair(mu_dense=0.1, radius=5.0, offset=14.0, nz=4):
    """Cylinder with two dense discs on the X axis; masks of the band between them and resin."""
    y, x, _ = _grid()
    vol = cylinder(nz=nz)
    for sx in (-offset, offset):
        vol[:, np.hypot(y, x - sx) <= radius] = mu_dense
    band = (np.abs(y) <= 1) & (np.abs(x) <= offset - radius - 2)
    resin = (np.abs(x) <= 3) & (np.abs(y) >= 12) & (np.abs(y) <= 20)
    return vol, band, resin


def particle_phantom(nz=16):
    """Resin cylinder (0.005) with one typical particle (0.012); particle and resin masks."""
    y, x, _ = _grid()
    vol = cylinder(nz=nz)
    vol[:, np.hypot(y - 11, x) < 8] = 0.012
    return vol, np.hypot(y - 11, x) < 6, np.hypot(y + 11, x) < 6


def radial_profile(image2d, mask, r):
    """Mean of image over integer-radius bins inside mask."""
    bins = np.rint(r[mask]).astype(int)
    sums = np.bincount(bins, image2d[mask])
    counts = np.bincount(bins)
    return sums[counts > 0] / counts[counts > 0], bins


# --- full simulation ------------------------------------------------------------------------


@pytest.mark.parametrize("filt", ["ramp", "shepp-logan", "hann"])
def test_fbp_of_noiseless_disc_recovers_mu(filt):
    vol = cylinder(mu=0.01, radius=25)
    rec = simulate_ct(vol, replace(CLEAN, filter=filt), rng=0)
    assert rec.shape == vol.shape and rec.dtype == np.float32
    inside = _grid()[2] < 20
    np.testing.assert_allclose(rec[:, inside].mean(), 0.01, rtol=0.01)
    np.testing.assert_allclose(rec[:, inside], 0.01, rtol=0.05)
    outside = _grid()[2] > 29
    assert np.abs(rec[:, outside]).max() < 0.001


def test_non_square_slices_and_single_slice():
    vol = np.zeros((1, 40, 64), np.float32)
    vol[0, 10:30, 20:44] = 0.01
    rec = simulate_ct(vol, CLEAN, rng=0)
    assert rec.shape == (1, 40, 64)
    np.testing.assert_allclose(rec[0, 14:26, 24:40].mean(), 0.01, rtol=0.02)
    fast = simulate_ct_fast(vol, rng=0)
    assert fast.shape == (1, 40, 64) and fast.dtype == np.float32


def test_beam_hardening_gives_cupping_in_uniform_cylinder():
    vol = cylinder(mu=0.01, radius=28)  # central line integral 0.56
    r = _grid()[2]
    centre, rim = r < 6, (r > 21) & (r < 25)
    for b, lo, hi in ((0.0, -0.005, 0.005), (0.1, 0.02, 0.06)):
        rec = simulate_ct(vol, replace(CLEAN, beam_hardening=b))
        drop = 1 - rec[:, centre].mean() / rec[:, rim].mean()
        assert lo < drop < hi, (b, drop)


def test_scatter_lowers_contrast_and_cups():
    vol = cylinder(mu=0.01, radius=28)
    r = _grid()[2]
    rec = simulate_ct(vol, replace(CLEAN, scatter=0.1))
    centre, rim = rec[:, r < 6].mean(), rec[:, (r > 21) & (r < 25)].mean()
    assert 0.008 < centre < rim < 0.0095
    assert centre < 0.997 * rim


def test_rings_from_gain_errors():
    vol = cylinder(radius=28)
    y, _, r = _grid()
    half = (y > 1) & (r < 26)
    structure = {}
    for strength in (0.0, 0.01):
        rec = simulate_ct(vol, replace(CLEAN, ring_strength=strength), rng=3)
        diff = (rec - vol)[1]
        profile, bins = radial_profile(diff, half, r)
        # variance of the half-plane explained by a function of the radius alone
        explained = np.var(profile[np.searchsorted(np.unique(bins), bins)]) / np.var(diff[half])
        structure[strength] = (np.std(np.diff(profile)), explained)
    assert structure[0.01][0] > 20 * structure[0.0][0]
    assert structure[0.01][1] > 0.5


def test_noise_std_scales_like_inverse_sqrt_photons():
    vol = cylinder()
    inside = _grid()[2] < 20
    base = CTParams(beam_hardening=0.0, ring_strength=0.0)
    ideal = simulate_ct(vol, replace(base, photons=None))
    std = {}
    for photons in (1e3, 1e4):
        rec = simulate_ct(vol, replace(base, photons=photons), rng=1)
        std[photons] = (rec - ideal)[:, inside].std()
    assert 2.5 < std[1e3] / std[1e4] < 4.0


def test_beam_hardening_darkens_band_between_dense_pair():
    vol, band, resin = dense_pair()
    contrast = {}
    for b in (0.0, 0.1):
        rec = simulate_ct(vol, replace(CLEAN, beam_hardening=b))
        contrast[b] = rec[:, band].mean() - rec[:, resin].mean()
    assert contrast[0.1] < contrast[0.0] - 0.0005  # 10 % of the resin level


def test_photon_starvation_gives_finite_dark_streak():
    vol, band, resin = dense_pair(mu_dense=0.5, nz=8)
    starved = simulate_ct(vol, CTParams(photons=100, beam_hardening=0, ring_strength=0), rng=0)
    assert np.isfinite(starved).all()
    ideal = simulate_ct(vol, CTParams(photons=None, beam_hardening=0, ring_strength=0))
    dark = starved[:, band].mean() - starved[:, resin].mean()
    assert dark < ideal[:, band].mean() - ideal[:, resin].mean() - 0.002


def _check_noise_texture(noise):
    """High-pass inside the cylinder (radius 30), stronger in its centre than near its rim."""
    low, high = _band_powers(noise[:, 12:52, 12:52])
    assert high > 1.2 * low
    r = _grid()[2]
    rim = noise[:, (r > 22) & (r < 28)].std()
    assert noise[:, r < 8].std() > 1.04 * rim
    assert noise[:, r > 31].std() < rim


def test_full_noise_texture():
    vol = cylinder(mu=0.02, radius=30, nz=16)
    base = CTParams(beam_hardening=0.0, ring_strength=0.0)
    noise = simulate_ct(vol, base, rng=0) - simulate_ct(vol, replace(base, photons=None))
    _check_noise_texture(noise)


def _band_powers(stack):
    """Mean 2D power at low (0.01-0.06) and high (0.12-0.3 cycles/voxel) radial frequencies.

    The high band stops where the detector blur (sigma 0.8 voxel) starts to dominate: FBP noise
    power grows like |k| times the squared MTF, which peaks near 0.15 cycles/voxel here.
    """
    power = np.abs(np.fft.fft2(stack - stack.mean(axis=(1, 2), keepdims=True))) ** 2
    fy = np.fft.fftfreq(stack.shape[1])[:, None]
    fx = np.fft.fftfreq(stack.shape[2])[None, :]
    k = np.hypot(fy, fx)
    low = power[:, (k > 0.01) & (k < 0.06)].mean()
    high = power[:, (k > 0.12) & (k < 0.3)].mean()
    return low, high


@pytest.mark.parametrize("simulate", [simulate_ct, simulate_ct_fast])
def test_typical_particle_is_a_few_noise_std_above_resin(simulate):
    vol, part, resin = particle_phantom()
    rec = simulate(vol, rng=0)
    cnr = (rec[:, part].mean() - rec[:, resin].mean()) / rec[:, resin].std()
    assert 2.0 < cnr < 10.0, cnr


@pytest.mark.parametrize("simulate", [simulate_ct, simulate_ct_fast])
def test_same_seed_same_output(simulate):
    vol, _, _ = dense_pair()
    a = simulate(vol, rng=7)
    np.testing.assert_array_equal(a, simulate(vol, rng=np.random.default_rng(7)))
    assert not np.array_equal(a, simulate(vol, rng=8))


@pytest.mark.parametrize("simulate", [simulate_ct, simulate_ct_fast])
@pytest.mark.parametrize(
    "vol, match",
    [
        (np.zeros((64, 64), np.float32), r"\(64, 64\)"),
        (np.zeros((2, 64, 64), np.int32), r"\(2, 64, 64\)"),
        (np.full((2, 64, 64), np.nan, np.float32), r"\(2, 64, 64\)"),
        (np.full((2, 64, 64), -0.01, np.float32), r"\(2, 64, 64\)"),
        (np.zeros((2, 4, 64), np.float32), r"\(2, 4, 64\)"),
        (np.zeros((0, 64, 64), np.float32), r"\(0, 64, 64\)"),
    ],
)
def test_bad_input_raises(simulate, vol, match):
    with pytest.raises(ValueError, match=match):
        simulate(vol, rng=0)


@pytest.mark.parametrize(
    "params",
    [
        CTParams(filter="cosine"),
        CTParams(beam_hardening=1.5),
        CTParams(photons=-1.0),
        CTParams(n_angles=3),
        CTParams(ring_strength=-0.1),
        FastCTParams(noise_sigma=-1.0),
        FastCTParams(filter="x"),
        FastCTParams(coarse_size=4),
    ],
)
def test_bad_params_raise(params):
    simulate = simulate_ct if isinstance(params, CTParams) else simulate_ct_fast
    with pytest.raises(ValueError):
        params.validate()
    with pytest.raises(ValueError):
        simulate(cylinder(), params, rng=0)


# --- fast simulation ------------------------------------------------------------------------


def test_fast_without_artefacts_is_the_blurred_volume():
    vol = cylinder(mu=0.01)
    out = simulate_ct_fast(vol, replace(FAST_CLEAN, blur=0.0), rng=0)
    np.testing.assert_allclose(out, vol, atol=1e-7)


def test_fast_noise_texture():
    vol = cylinder(mu=0.02, radius=30, nz=16)
    params = replace(FAST_CLEAN, noise_sigma=0.2)
    noise = simulate_ct_fast(vol, params, rng=0) - simulate_ct_fast(vol, FAST_CLEAN)
    _check_noise_texture(noise)


def test_fast_cupping_and_dark_band():
    r = _grid()[2]
    vol = cylinder(mu=0.01, radius=28)
    out = simulate_ct_fast(vol, replace(FAST_CLEAN, cupping=0.1))
    drop = 1 - out[:, r < 6].mean() / out[:, (r > 21) & (r < 25)].mean()
    assert 0.02 < drop < 0.06
    pair, band, resin = dense_pair()
    contrast = {}
    for b in (0.0, 0.1):
        out = simulate_ct_fast(pair, replace(FAST_CLEAN, cupping=b))
        contrast[b] = out[:, band].mean() - out[:, resin].mean()
    assert contrast[0.1] < contrast[0.0] - 0.0005


def test_fast_coarse_grid_is_aligned_and_handles_odd_shapes():
    r = _grid()[2]
    vol = cylinder(mu=0.01, radius=28)
    drops = []
    for coarse in (64, 24, 16):  # factors 1, 3 (with padding) and 4
        out = simulate_ct_fast(vol, replace(FAST_CLEAN, cupping=0.1, coarse_size=coarse))
        drops.append(1 - out[:, r < 6].mean() / out[:, (r > 21) & (r < 25)].mean())
        # cupping stays centred: left and right halves of the cylinder agree
        left, right = out[:, 20:44, 8:24].mean(), out[:, 20:44, 40:56].mean()
        assert abs(left - right) < 2e-5
    np.testing.assert_allclose(drops, drops[0], atol=0.01)
    odd = simulate_ct_fast(np.full((2, 50, 70), 0.005, np.float32), FastCTParams(coarse_size=16))
    assert odd.shape == (2, 50, 70) and np.isfinite(odd).all()


@pytest.mark.parametrize("simulate", [simulate_ct, simulate_ct_fast])
def test_all_air_volume(simulate):
    out = simulate(np.zeros((2, 32, 32), np.float32), rng=0)
    assert np.isfinite(out).all() and np.abs(out).max() < 0.01


def test_fast_rings():
    vol = cylinder(radius=28)
    y, _, r = _grid()
    params = replace(FAST_CLEAN, ring_strength=0.01)
    diff = (simulate_ct_fast(vol, params, rng=3) - simulate_ct_fast(vol, FAST_CLEAN))[1]
    half = (y > 1) & (r < 26)
    profile, _ = radial_profile(diff, half, r)
    assert np.std(np.diff(profile)) > 1e-4
    # constant along circles: the half-plane is well explained by its radial profile
    bins = np.rint(r[half]).astype(int)
    fitted = profile[np.searchsorted(np.unique(bins), bins)]
    assert np.var(diff[half] - fitted) < 0.5 * np.var(diff[half])


# --- uint16 ---------------------------------------------------------------------------------


def test_to_uint16_offsets_gains_and_clips():
    image = np.array([-1.0, 0.0, 0.005, 0.03, 1.0], np.float32)
    for seed in range(20):
        grey = to_uint16(image, rng=seed)
        assert grey.dtype == np.uint16
        assert grey[0] == 0 and grey[-1] == 65535  # clipped, not wrapped
        assert 4000 <= grey[2] <= 22000
        assert grey[2] < grey[3] <= 61000
    np.testing.assert_array_equal(to_uint16(image, rng=3), to_uint16(image, rng=3))
    with pytest.raises(ValueError):
        to_uint16(np.array([np.nan], np.float32))
    with pytest.raises(ValueError):
        to_uint16(image, gain_range=(2.0, 1.0))
