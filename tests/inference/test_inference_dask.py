"""The CPU stages of predict on a dask.distributed cluster (worker processes) give the output
of the default local threads."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr
from inference_helpers import blobs, cpu_trainer

from particleseg.inference.inputs import resolve_scan
from particleseg.inference.model import load_checkpoint
from particleseg.inference.pipeline import predict_scan

distributed = pytest.importorskip("distributed")


def run(scan_path, out, checkpoint, dask):
    trainer = cpu_trainer()
    scan = resolve_scan(scan_path, particle_size_px=10.0)
    predict_scan(
        scan,
        out,
        load_checkpoint(checkpoint),
        trainer,
        inference={"chunk_size": 16, "engine": "torch", "precision": "fp32"},
        dask=dask,
    )
    return zarr.open_array(str(out / "instances.zarr"))[...]


def test_cpu_stages_on_a_dask_cluster_equal_local_threads(tiny_checkpoint, tmp_path):
    tifffile.imwrite(tmp_path / "scan.tif", blobs((40, 44, 42), 40, 5))
    local = run(tmp_path / "scan.tif", tmp_path / "local", tiny_checkpoint, {})
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = run(
            tmp_path / "scan.tif",
            tmp_path / "cluster",
            tiny_checkpoint,
            {"address": cluster.scheduler_address},
        )
    assert local.max() > 10
    np.testing.assert_array_equal(remote, local)
