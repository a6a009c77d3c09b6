"""The chunked network stage equals one plain MONAI sliding window over the resized scan,
whatever the chunk size and the order (or process) in which chunks are computed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr
from inference_helpers import blobs
from monai.inferers import sliding_window_inference

from particleseg.inference.chunk_store import ChunkStore
from particleseg.inference.lightning import chunk_image
from particleseg.inference.model import load_checkpoint
from particleseg.inference.plan import plan_chunks
from particleseg.inference.windows import WindowSums
from particleseg.transforms.intensity import zscore
from particleseg.transforms.normalization import fit_normalization
from particleseg.transforms.resize import resize_image

ZSCORE = fit_normalization(np.zeros(0), {"scheme": "global_zscore", "mean": 100.0, "std": 20.0})


def plain_probabilities(model, scan, network_shape):
    image = zscore(resize_image(scan, network_shape), 100.0, 20.0)
    with torch.no_grad():
        return sliding_window_inference(
            torch.from_numpy(image)[None, None],
            roi_size=model.patch_size,
            sw_batch_size=1,
            predictor=lambda x: torch.softmax(model.net(x), dim=1),
            overlap=0.5,
            mode="gaussian",
            sigma_scale=0.125,
        )[0].numpy()


def run_chunks(model, scan, plan, root, order, probabilities=True):
    store = ChunkStore(root, plan, save_probabilities=probabilities)
    sums = WindowSums(model.net, model.patch_size)
    finalized_now = 0
    for c in order:
        image = torch.from_numpy(chunk_image(scan, plan, c, ZSCORE))
        starts = plan.windows(c) - np.asarray(plan.extent(c)[0])
        if len(starts):
            result = sums(image, starts).numpy()
        else:
            result = np.zeros((3, *image.shape), np.float32)
        finalized_now += store.save(c, result)
    store.finalize_pending()
    return store, sums.forward_passes, finalized_now


@pytest.mark.parametrize(
    "network_shape,chunk", [((24, 30, 27), 16), ((24, 30, 27), 32), ((40, 12, 20), 24)]
)
def test_chunked_equals_plain_sliding_window(tiny_checkpoint, tmp_path, network_shape, chunk):
    model = load_checkpoint(tiny_checkpoint)
    scan = blobs((20, 25, 22), 12, 4)
    plan = plan_chunks(network_shape, model.patch_size, chunk)
    store, passes, finalized_now = run_chunks(model, scan, plan, tmp_path, range(plan.n_chunks))
    assert finalized_now == plan.n_chunks  # in raster order nothing waits
    assert passes == plan.n_windows  # every window once: 1.0x a plain sliding window
    reference = plain_probabilities(model, scan, network_shape)
    probs = store.probabilities[...].astype(np.float32)
    np.testing.assert_allclose(probs, reference, atol=2e-3)  # float16 storage
    top2 = np.sort(reference, axis=0)[-2:]
    clear = (top2[1] - top2[0]) > 1e-4
    bc = store.border_core[...]
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(bc[clear], reference.argmax(0)[clear])
    assert not list((tmp_path / "spill").iterdir())  # every piece consumed and deleted
    assert not list((tmp_path / "pending").iterdir())


def test_any_order_gives_identical_output(tiny_checkpoint, tmp_path):
    model = load_checkpoint(tiny_checkpoint)
    scan = blobs((20, 25, 22), 12, 4, seed=1)
    plan = plan_chunks((30, 30, 30), model.patch_size, 16)
    first, _, _ = run_chunks(model, scan, plan, tmp_path / "raster", range(plan.n_chunks))
    order = np.random.default_rng(0).permutation(plan.n_chunks)
    second, _, now = run_chunks(model, scan, plan, tmp_path / "shuffled", order)
    assert now < plan.n_chunks  # some chunks had to wait for a neighbour
    np.testing.assert_array_equal(first.border_core[...], second.border_core[...])
    np.testing.assert_array_equal(first.probabilities[...], second.probabilities[...])


def test_outputs_are_chunked_like_the_plan(tiny_checkpoint, tmp_path):
    model = load_checkpoint(tiny_checkpoint)
    plan = plan_chunks((40, 40, 40), model.patch_size, 24)
    store = ChunkStore(tmp_path, plan, save_probabilities=True)
    assert store.border_core.chunks == plan.chunk_size == (24, 24, 24)
    for c in range(plan.n_chunks):
        lo, hi = plan.unpadded(*plan.interior(c))
        assert all(a % 24 == 0 for a in lo)  # each chunk writes whole zarr chunks
    again = zarr.open_array(str(tmp_path / "border_core.zarr"))
    assert again.shape == (40, 40, 40)


def test_wrong_sums_shape_is_refused(tiny_checkpoint, tmp_path):
    model = load_checkpoint(tiny_checkpoint)
    plan = plan_chunks((20, 20, 20), model.patch_size, 16)
    store = ChunkStore(tmp_path, plan)
    with pytest.raises(ValueError, match="chunk 0: sums of shape"):
        store.save(0, np.zeros((3, 5, 5, 5), np.float32))


def test_tta_averages_the_eight_mirrorings(tiny_checkpoint):
    model = load_checkpoint(tiny_checkpoint)
    image = torch.from_numpy(zscore(blobs((16, 16, 16), 3, 4), 100.0, 20.0))
    sums = WindowSums(model.net, model.patch_size, tta=True)
    got = sums(image, np.zeros((1, 3), np.int64))
    assert sums.forward_passes == 8
    x = image[None, None]
    with torch.no_grad():
        expected = (
            sum(
                torch.softmax(model.net(x.flip(a) if a else x), 1).flip(a)
                if a
                else torch.softmax(model.net(x), 1)
                for a in [(), (2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4)]
            )
            / 8
        )
    np.testing.assert_allclose(
        got.numpy(), (expected[0] * sums.weights(image.device)).numpy(), rtol=1e-5, atol=1e-6
    )
