"""Label TIFFs for ImageJ/Fiji and the spacing of ImageJ and OME-TIFF files, read back with
tifffile's own metadata parsers (independent of ours)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from particleseg.io import read_volume, read_volume_spacing, write_volume
from particleseg.io.imagej import (
    MAX_FLOAT32_LABEL,
    label_tiff_dtype,
    tiff_spacing,
    write_label_tiff,
)


def labels(n, shape=(6, 20, 30), seed=0):
    """Labels holding the ids 1..n (n <= the voxel count) at random places."""
    rng = np.random.default_rng(seed)
    out = np.zeros(shape, np.uint32)
    out.flat[rng.choice(out.size, size=min(n, out.size), replace=False)] = np.arange(1, n + 1)
    return out


def test_a_label_tiff_opens_in_imagej_with_its_scale(tmp_path):
    lab = labels(300)
    path, warning = write_label_tiff(tmp_path / "l.tif", lab, 300, (2.0, 0.5, 0.25), "um")
    assert warning is None
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        meta = tif.imagej_metadata
        assert meta["spacing"] == 2.0 and meta["unit"] == "micron" and meta["slices"] == 6
        x_res = tif.pages.first.tags["XResolution"].value
        y_res = tif.pages.first.tags["YResolution"].value
        assert x_res[1] / x_res[0] == 0.25 and y_res[1] / y_res[0] == 0.5
        series = tif.series[0]
        assert series.axes == "ZYX" and series.dtype == np.uint16
        np.testing.assert_array_equal(series.asarray(), lab)
    assert read_volume_spacing(path) == (2.0, 0.5, 0.25)
    assert read_volume(path).shape == lab.shape


def test_many_particles_go_to_float32_exactly_with_a_warning(tmp_path):
    lab = labels(70_000, shape=(10, 100, 100))
    path, warning = write_label_tiff(tmp_path / "l.tif", lab, 70_000)
    assert "32-bit float" in warning
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].dtype == np.float32
        np.testing.assert_array_equal(tif.asarray().astype(np.uint32), lab)  # every id exact
    assert label_tiff_dtype(MAX_FLOAT32_LABEL)[0] == np.float32
    assert label_tiff_dtype(MAX_FLOAT32_LABEL + 1)[0] is None
    path, warning = write_label_tiff(tmp_path / "none.tif", lab, MAX_FLOAT32_LABEL + 1)
    assert path is None and "instances.zarr" in warning
    assert not (tmp_path / "none.tif").exists()


def test_spacing_of_ome_imagej_and_our_own_tiffs(tmp_path):
    image = np.zeros((4, 8, 8), np.uint16)
    tifffile.imwrite(
        tmp_path / "scan.ome.tif",
        image,
        metadata={"axes": "ZYX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.4, "PhysicalSizeZ": 1.5},
    )
    assert tiff_spacing(tmp_path / "scan.ome.tif") == (1.5, 0.4, 0.3)
    tifffile.imwrite(
        tmp_path / "ij.tif",
        image,
        imagej=True,
        resolution=(1 / 0.2, 1 / 0.2),
        metadata={"axes": "ZYX", "spacing": 0.7, "unit": "mm"},
    )
    assert read_volume_spacing(tmp_path / "ij.tif") == pytest.approx((0.7, 0.2, 0.2))
    write_volume(tmp_path / "ours.tif", image, spacing=(3.0, 1.0, 1.0))
    assert read_volume_spacing(tmp_path / "ours.tif") == (3.0, 1.0, 1.0)
    tifffile.imwrite(tmp_path / "plain.tif", image)
    assert read_volume_spacing(tmp_path / "plain.tif") is None


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("axes", ["zyx", "tczyx"])
def test_an_ome_zarr_image_reads_as_its_level_0_with_its_scale(tmp_path, version, axes):
    """An NGFF multiscales group (written by hand after the spec, v2 for 0.4, v3 for 0.5)."""
    import zarr

    data = np.arange(6 * 8 * 10, dtype=np.uint16).reshape(6, 8, 10)
    path = tmp_path / "scan.ome.zarr"
    group = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    lead = (1,) * (len(axes) - 3)
    for level, step in (("0", 1), ("1", 2)):
        level_data = data[::step, ::step, ::step].reshape(lead + data[::step, ::step, ::step].shape)
        group.create_array(level, data=level_data, chunks=level_data.shape)
    kinds = {"t": "time", "c": "channel"}
    multiscales = [
        {
            "version": version,
            "axes": [{"name": a, "type": kinds.get(a, "space")} for a in axes],
            "datasets": [
                {
                    "path": str(level),
                    "coordinateTransformations": [
                        {"type": "scale", "scale": [1.0] * len(lead) + [2.0 * f, 0.5 * f, 0.5 * f]}
                    ],
                }
                for level, f in (("0", 1), ("1", 2))
            ],
        }
    ]
    if version == "0.4":
        group.attrs["multiscales"] = multiscales
    else:
        group.attrs["ome"] = {"version": "0.5", "multiscales": multiscales}
    image = read_volume(path)
    assert image.shape == (6, 8, 10)
    np.testing.assert_array_equal(np.asarray(image[...]), data)
    np.testing.assert_array_equal(np.asarray(image[2:4, :, 3]), data[2:4, :, 3])
    assert read_volume_spacing(path) == (2.0, 0.5, 0.5)
