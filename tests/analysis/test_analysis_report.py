"""write_report: files, embedded figures, CSV round trip, lazy slice reads, headless rendering."""

import re
import shutil
import subprocess

import numpy as np
import pytest
import zarr
from matplotlib.image import imread
from scipy import ndimage as ndi

from particleseg.analysis import particle_properties
from particleseg.analysis.distribution import read_particles_csv, size_distribution
from particleseg.analysis.report import REPORT_FILES, write_report

DATA_URI = '<img src="data:image/png;base64,'
FIGURES = ("size_distribution", "shape_factors", "shape_vs_size", "slices")


class SpyArray:
    """A zarr array that records every index it is read with."""

    def __init__(self, array):
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.reads = []

    def __getitem__(self, index):
        self.reads.append(index)
        return self.array[index]


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(2)
    smooth = ndi.gaussian_filter(rng.random((24, 40, 44)), 1.5)
    labels, _ = ndi.label(smooth > 0.53)
    labels = labels.astype(np.uint32)
    image = (smooth * 4000).astype(np.uint16)
    spacing = (2.0, 1.0, 1.0)
    return labels, image, spacing, particle_properties(labels, image, spacing)


@pytest.fixture(scope="module")
def report(sample, tmp_path_factory):
    labels, image, spacing, table = sample
    out = tmp_path_factory.mktemp("report")
    zl = zarr.create_array(
        out / "labels.zarr", shape=labels.shape, chunks=(8, 8, 8), dtype=labels.dtype
    )
    zl[:] = labels
    zi = zarr.create_array(
        out / "image.zarr", shape=image.shape, chunks=(8, 8, 8), dtype=image.dtype
    )
    zi[:] = image
    spy_l, spy_i = SpyArray(zl), SpyArray(zi)
    paths = write_report(
        out / "rep", table, spy_l, spy_i, spacing, "um", {"scan": "sample <A&B>", "model": "v1"}
    )
    return paths, spy_l, spy_i


def test_files_exist(report):
    paths, _, _ = report
    names = {p.name for p in paths.values()}
    assert names >= {
        "particles.csv",
        "size_distribution.csv",
        "size_distribution.png",
        "shape_factors.png",
        "shape_vs_size.png",
        "report.html",
    }
    assert names == set(REPORT_FILES), "REPORT_FILES (what predict's overwrite removes) is stale"
    for path in paths.values():
        assert path.is_file() and path.stat().st_size > 0
        assert not path.with_name(path.name + ".tmp").exists()
    for name in FIGURES:
        assert paths[f"{name}_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_embeds_every_figure_and_the_summary(report, sample):
    paths, _, _ = report
    _, _, _, table = sample
    text = paths["report_html"].read_text()
    assert text.count(DATA_URI) == len(FIGURES)
    for name in FIGURES:
        assert f'id="{name}"' in text
    assert "sample &lt;A&amp;B&gt;" in text and "model" in text
    dist = size_distribution(table["equivalent_diameter"], table["volume"])
    assert f"<td>particles</td><td>{len(table['id'])}</td>" in text
    assert f"{dist.d_volume[50]:.6g}" in text and "D90 (number-weighted) [um]" in text
    assert 'src="http' not in text and "<link" not in text  # self-contained


def test_csv_round_trips(report, sample):
    paths, _, _ = report
    _, _, _, table = sample
    back = read_particles_csv(paths["particles_csv"])
    assert list(back) == list(table)
    for name, values in table.items():
        np.testing.assert_array_equal(back[name], values)
    curves, units = read_particles_csv(paths["size_distribution_csv"], with_units=True)
    dist = size_distribution(table["equivalent_diameter"], table["volume"])
    np.testing.assert_array_equal(curves["size"], dist.size)
    np.testing.assert_array_equal(curves["passing_volume"], dist.passing_volume)
    assert units == {"size": "um", "passing_number": None, "passing_volume": None}


def test_only_mid_slices_are_read(report, sample):
    _, spy_l, spy_i = report
    labels = sample[0]
    for spy in (spy_l, spy_i):
        assert len(spy.reads) == 3
        for index in spy.reads:
            ints = [k for k in index if isinstance(k, int)]
            assert len(ints) == 1  # one fixed coordinate: a slice, never the volume
    assert [next(k for k in i if isinstance(k, int)) for i in spy_l.reads] == [
        n // 2 for n in labels.shape
    ]


def test_report_of_an_empty_volume_without_image(tmp_path):
    labels = np.zeros((6, 7, 8), np.uint16)
    table = particle_properties(labels)
    paths = write_report(tmp_path, table, labels, None, (1.0, 1.0, 1.0), "voxel", {})
    text = paths["report_html"].read_text()
    assert text.count(DATA_URI) == len(FIGURES) and "<td>particles</td><td>0</td>" in text
    assert read_particles_csv(paths["particles_csv"])["id"].size == 0


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    paths, _, _ = report
    url = paths["report_html"].resolve().as_uri()
    common = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    shot = tmp_path / "shot.png"
    dom = subprocess.run(
        [*common, "--virtual-time-budget=5000", "--window-size=1200,2000", f"--screenshot={shot}"]
        + ["--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None
    assert f'data-images-loaded="{len(FIGURES)}"' in body.group(0)
    assert f'data-images-total="{len(FIGURES)}"' in body.group(0)
    pixels = imread(shot)
    assert pixels.shape[:2] == (2000, 1200)
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50  # text, plots and slices, not a blank page
