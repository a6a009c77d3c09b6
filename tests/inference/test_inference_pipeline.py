"""predict_scan end to end, in process: equal to the in-memory post-processing of its own
border-core map, outputs and summary, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import zarr
from inference_helpers import POST, blobs, run

from particleseg.inference.inputs import resolve_scan
from particleseg.io.volumes import read_volume, read_volume_spacing
from particleseg.nearest_index import nearest_source_index
from particleseg.targets import border_core_to_instance, filter_small_particles


def reference_instances(border_core, scan_shape, min_relative_size=0.005):
    """The in-memory path: instances on the network grid, nearest back, small-particle filter."""
    labels = border_core_to_instance(border_core, **{k: POST[k] for k in POST if k != "halo"})
    index = [nearest_source_index(n, s) for n, s in zip(border_core.shape, scan_shape, strict=True)]
    return filter_small_particles(labels[np.ix_(*index)], min_relative_size)


@pytest.mark.parametrize("size_px", [10.0, 6.0, 8.0])  # network grid smaller, larger, equal
def test_predict_equals_in_memory_postprocessing(tiny_checkpoint, tmp_path, size_px):
    image = blobs((30, 34, 31), 25, 4.5)
    tifffile.imwrite(tmp_path / "scan.tif", image)
    summary = run(
        tmp_path / "scan.tif", tmp_path / "out", tiny_checkpoint, size_px, spacing=[0.5, 0.5, 0.5]
    )
    out = tmp_path / "out"
    bc = zarr.open_array(str(out / "border_core.zarr"))[...]
    assert bc.shape == tuple(summary["network_shape"])
    got = zarr.open_array(str(out / "instances.zarr"))
    assert got.dtype == np.uint32 and got.shape == image.shape
    assert got.attrs["spacing"] == [0.5, 0.5, 0.5]
    expected = reference_instances(bc, image.shape)
    assert expected.max() > 10  # particles straddle the 16^3 chunks
    np.testing.assert_array_equal(got[...], expected)
    with tifffile.TiffFile(out / "instances.tif") as tif:  # a label TIFF Fiji opens to scale
        assert tif.is_imagej and tif.imagej_metadata["spacing"] == 0.5
        assert tif.series[0].dtype == np.uint16
        np.testing.assert_array_equal(tif.asarray(), expected)
    ome = out / "instances.ome.zarr"  # the NGFF copy: same ids, the scan's scale
    np.testing.assert_array_equal(np.asarray(read_volume(ome)), expected)
    assert read_volume_spacing(ome) == (0.5, 0.5, 0.5)
    assert summary["disk_bytes"]["outputs"]["instances.ome.zarr"] > 0
    assert summary["particles"] == int(expected.max())
    assert summary["windows"]["forward_passes"] == summary["windows"]["plain_sliding_window"]
    assert json.loads((out / "summary.json").read_text())["particles"] == summary["particles"]
    assert not (out / ".work").exists()
    assert (out / "overlay.png").stat().st_size > 1000
    for key in ("network", "instances", "resample", "filter", "finish"):
        assert summary["timings_s"][key] >= 0
    assert summary["peak_rss_bytes"]["self"] > 0


def test_complete_output_is_kept_unless_overwrite(tiny_checkpoint, tmp_path):
    tifffile.imwrite(tmp_path / "scan.tif", blobs((20, 20, 20), 8, 4))
    out = tmp_path / "out"
    first = run(tmp_path / "scan.tif", out, tiny_checkpoint, 8.0)
    stamp = (out / "instances.zarr" / "zarr.json").stat().st_mtime_ns
    again = run(tmp_path / "scan.tif", out, tiny_checkpoint, 8.0)
    assert again == first
    assert (out / "instances.zarr" / "zarr.json").stat().st_mtime_ns == stamp
    redo = run(tmp_path / "scan.tif", out, tiny_checkpoint, 8.0, overwrite=True)
    assert redo["particles"] == first["particles"]
    assert (out / "instances.zarr" / "zarr.json").stat().st_mtime_ns != stamp


def test_unfinished_run_with_other_settings_is_refused(tiny_checkpoint, tmp_path):
    tifffile.imwrite(tmp_path / "scan.tif", blobs((20, 20, 20), 8, 4))
    out = tmp_path / "out"
    run(tmp_path / "scan.tif", out, tiny_checkpoint, 8.0, outputs={"keep_work": True})
    (out / "summary.json").unlink()  # as if killed before the end
    with pytest.raises(
        ValueError, match="unfinished run with other inputs or settings.*particle_size_px"
    ):
        run(tmp_path / "scan.tif", out, tiny_checkpoint, 5.0)


def test_huge_resize_asks_for_force(tiny_checkpoint, tmp_path):
    tifffile.imwrite(tmp_path / "scan.tif", blobs((20, 20, 20), 8, 4))
    with pytest.raises(
        ValueError, match=r"scan.tif: particles of 0.5 voxels.*4096.0x the scan.*force=true"
    ):
        run(tmp_path / "scan.tif", tmp_path / "out", tiny_checkpoint, 0.5, max_hours=1e-9)
    assert not (tmp_path / "out" / "summary.json").exists()


def test_missing_particle_size_says_how_to_give_it(tmp_path):
    np.save(tmp_path / "scan.npy", blobs((8, 8, 8), 2, 2))
    with pytest.raises(
        ValueError,
        match=r"scan.npy: the mean particle size is unknown.*"
        r"particle_size_px=N.*particle_size=auto",
    ):
        resolve_scan(tmp_path / "scan.npy")
    with pytest.raises(ValueError, match="has no spacing; also give spacing"):
        resolve_scan(tmp_path / "scan.npy", particle_size=0.3)


def test_unreadable_input_names_the_file(tmp_path):
    (tmp_path / "broken.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(ValueError, match="broken.tif"):
        resolve_scan(tmp_path / "broken.tif", particle_size_px=5)


def test_sizes_from_metadata_physical_units_and_auto(tmp_path):
    from particleseg.io import SampleMetadata, write_metadata

    image = blobs((24, 40, 40), 30, 4)
    np.save(tmp_path / "scan.npy", image)
    write_metadata(
        tmp_path / "scan.npy", SampleMetadata(spacing=(2.0, 1.0, 1.0), particle_size=8.0, unit="um")
    )
    scan = resolve_scan(tmp_path / "scan.npy")
    assert scan.particle_size_px == (4.0, 8.0, 8.0) and scan.size_source == "metadata"
    scan = resolve_scan(tmp_path / "scan.npy", particle_size=4.0)
    assert scan.particle_size_px == (2.0, 4.0, 4.0) and scan.size_source == "particle_size"
    scan = resolve_scan(tmp_path / "scan.npy", particle_size="auto")
    assert scan.size_source == "auto" and scan.estimate["diameter_px"] > 0


def test_a_sidecar_with_the_spacing_only_serves_a_size_given_on_the_command(tmp_path):
    """A scanner's sidecar may hold the spacing only: the command's size completes it."""
    import json

    np.save(tmp_path / "scan.npy", blobs((8, 8, 8), 2, 2))
    sidecar = tmp_path / "scan.meta.json"
    sidecar.write_text(json.dumps({"spacing": [2.0, 1.0, 1.0], "unit": "um"}))
    scan = resolve_scan(tmp_path / "scan.npy", particle_size_px=5)
    assert scan.particle_size_px == (5.0,) * 3 and scan.spacing == (2.0, 1.0, 1.0)
    assert scan.unit == "um"
    scan = resolve_scan(tmp_path / "scan.npy", particle_size=4.0)
    assert scan.particle_size_px == (2.0, 4.0, 4.0) and scan.size_source == "particle_size"
    with pytest.raises(ValueError, match=r"scan.meta.json: missing particle size"):
        resolve_scan(tmp_path / "scan.npy")  # nothing gives the size
    sidecar.write_text(json.dumps({"spacing": [2.0, 0, 1.0]}))
    with pytest.raises(ValueError, match=r"scan.meta.json: spacing must be 3 positive"):
        resolve_scan(tmp_path / "scan.npy", particle_size_px=5)


def test_model_thresholds_apply_unless_given(tiny_checkpoint, tmp_path):
    from particleseg.inference.cpu_stages import POSTPROCESS_DEFAULTS, resolve_postprocess
    from particleseg.inference.export import export_model

    assert resolve_postprocess({"halo": None}, {}) == POSTPROCESS_DEFAULTS
    tuned = {"min_relative_size": 0.4, "small_core_distance": 2.0}
    both = resolve_postprocess({"min_relative_size": 0.1, "halo": None}, tuned)
    assert both == {**POSTPROCESS_DEFAULTS, "small_core_distance": 2.0, "min_relative_size": 0.1}
    # end to end: a model with a tuned filter gives what passing the same filter gives
    image = blobs((30, 34, 31), 25, 4.5)
    tifffile.imwrite(tmp_path / "scan.tif", image)
    model = export_model(
        tiny_checkpoint, tmp_path / "model.ckpt", "float32", {"min_relative_size": 1.0}
    )
    tuned_run = run(tmp_path / "scan.tif", tmp_path / "a", model, 8.0)
    given_run = run(
        tmp_path / "scan.tif",
        tmp_path / "b",
        tiny_checkpoint,
        8.0,
        postprocess={**POST, "min_relative_size": 1.0},
    )
    default_run = run(tmp_path / "scan.tif", tmp_path / "c", tiny_checkpoint, 8.0)
    assert tuned_run["particles"] == given_run["particles"] < default_run["particles"]


def test_a_compressed_tiff_scan_gets_its_particle_table(tiny_checkpoint, tmp_path):
    # a compressed TIFF is read through tifffile's zarr store, which holds a lock and cannot be
    # pickled: the analysis must not need to send it to other processes
    image = blobs((30, 34, 31), 25, 4.5)
    tifffile.imwrite(tmp_path / "scan.tif", image, compression="zlib")
    summary = run(tmp_path / "scan.tif", tmp_path / "out", tiny_checkpoint, 8.0)
    assert (tmp_path / "out" / "particles.csv").exists()
    assert summary["size_distribution"]["count"] == summary["particles"]
