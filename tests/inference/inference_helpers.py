"""Helpers of the inference tests: a tiny untrained checkpoint and a small synthetic scan."""

from __future__ import annotations

import numpy as np
import torch
from hydra.utils import instantiate

from particleseg.inference.inputs import resolve_scan
from particleseg.inference.model import CHECKPOINT_KEY, load_checkpoint
from particleseg.inference.pipeline import predict_scan

POST = {"halo": 4, "small_core_distance": 1.0, "small_core_fraction": 0.95}
TINY_NET = {
    "_target_": "particleseg.models.UNet",
    "in_channels": 1,
    "num_classes": 3,
    "n_stages": 2,
    "features_base": 4,
    "features_max": 8,
    "kernel_size": 3,
    "strides": None,
    "convs_per_stage": 1,
    "norm": "instance",
    "nonlin": "leakyrelu",
    "deep_supervision": True,
}


def write_checkpoint(
    path, patch=(16, 16, 16), target=8.0, seed=0, bias_core=0.0, normalization=None
):
    """A checkpoint in train.py's format with a randomly initialised tiny U-Net.

    ``bias_core`` is added to the last layer's core logit so that the untrained net predicts
    some cores (more particles to post-process). Without ``normalization`` the checkpoint is an
    older version's: a global z-score in ``intensity_stats`` only.
    """
    torch.manual_seed(seed)
    net = instantiate(TINY_NET)
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    for key, value in state.items():
        if key.endswith("bias") and value.shape == (3,):
            value[1] += bias_core
    torch.save(
        {
            "state_dict": state,
            CHECKPOINT_KEY: {
                "net_config": TINY_NET,
                **(
                    {"normalization": normalization}
                    if normalization is not None
                    else {"intensity_stats": {"mean": 100.0, "std": 20.0}}
                ),
                "target_particle_size": float(target),
                "border_thickness": 1,
                "patch_size": list(patch),
            },
        },
        path,
    )
    return path


def labelled_dataset(folder, split="train"):
    """Two small labelled synthetic scans (20 x 32 x 32, 7-voxel particles) in ``split``."""
    from particleseg.synth.dataset import build_dataset

    scene = {"size_median_px": 7, "size_range_px": [5, 10], "packing": 0.25}
    spec = {"n": 2, "shape": [20, 32, 32], "scene": scene, "ct": {"photons": 3000}}
    build_dataset(folder, {split: spec}, mode="fast", seed=3, progress=False)
    return folder


def blobs(shape, n, radius, seed=0):
    """uint16 image of bright balls on a darker noisy background."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=np.float32)
    image = rng.normal(80, 5, size=shape).astype(np.float32)
    for _ in range(n):
        c = rng.uniform(0, 1, 3) * np.array(shape)
        d2 = sum((g - ci) ** 2 for g, ci in zip(grid, c, strict=True))
        image[d2 < radius**2] = 140 + rng.normal(0, 5)
    return np.clip(image, 0, 65535).astype(np.uint16)


def cpu_trainer():
    """A quiet single-process CPU Trainer for the network stage."""
    import lightning as L

    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )


def run(scan_path, out, checkpoint, size_px, **kwargs):
    """predict_scan in process, on the CPU, with small chunks and the test thresholds."""
    scan = resolve_scan(scan_path, particle_size_px=size_px, spacing=kwargs.pop("spacing", None))
    options = {
        "inference": {"chunk_size": 16, "engine": "torch", "precision": "fp32"},
        "postprocess": POST,
        "outputs": {"border_core": True},
    }
    options.update(kwargs)
    return predict_scan(scan, out, load_checkpoint(checkpoint), cpu_trainer(), **options)
