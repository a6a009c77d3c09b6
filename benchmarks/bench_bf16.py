"""bfloat16 autocast against fp32 inference with a trained model, on its validation crops.

Prints, per crop and in total: seconds of the sliding window in fp32 and under bf16 autocast,
the share of voxels whose argmax class agrees, and F1_instance of each against the reference.

Usage: python benchmarks/bench_bf16.py CHECKPOINT [--experiment cpu_small] [--dataset data/synth]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from particleseg.config import CONF_DIR

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--experiment", default="cpu_small")
    parser.add_argument("--dataset", default=str(ROOT / "data" / "synth"))
    args = parser.parse_args()

    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    import particleseg.config  # noqa: F401
    from particleseg.inference.model import load_checkpoint
    from particleseg.inference.sliding_window import predict_probabilities
    from particleseg.metrics import evaluate_instances
    from particleseg.targets import border_core_to_instance, filter_small_particles

    model = load_checkpoint(args.checkpoint)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            [
                f"experiment={args.experiment}",
                f"dataset={args.dataset}",
                f"paths.root={ROOT}",
                "paths.output_dir=/tmp",
                "data.num_workers=0",
                f"data.normalization={json.dumps(model.normalization)}",
            ],
        )
    dm = instantiate(cfg.data)
    dm.setup("fit")
    rows = []
    for crop in dm.val_set.crops:
        image = torch.from_numpy(np.ascontiguousarray(crop["image"]))[None]
        out = {}
        for name, bf16 in (("fp32", False), ("bf16", True)):
            t = time.perf_counter()
            probs = predict_probabilities(model.net, image, model.patch_size, autocast=bf16)
            seconds = time.perf_counter() - t
            bc = probs.argmax(1)[0].to(torch.uint8).numpy()
            inst = filter_small_particles(border_core_to_instance(bc))
            f1i = evaluate_instances(inst, crop["instances"].astype(np.uint32))["f1_instance"]
            out[name] = (seconds, bc, f1i)
        agree = float((out["fp32"][1] == out["bf16"][1]).mean())
        rows.append(
            (crop["name"], out["fp32"][0], out["bf16"][0], agree, out["fp32"][2], out["bf16"][2])
        )
    print(
        f"\n{'crop':<16} {'fp32 s':>7} {'bf16 s':>7} {'argmax agree':>13} "
        f"{'F1_inst fp32':>13} {'F1_inst bf16':>13}"
    )
    for r in rows:
        print(f"{r[0]:<16} {r[1]:>7.2f} {r[2]:>7.2f} {r[3]:>13.5f} {r[4]:>13.4f} {r[5]:>13.4f}")
    mean = np.mean([r[1:] for r in rows], axis=0)
    print(
        f"{'mean':<16} {mean[0]:>7.2f} {mean[1]:>7.2f} {mean[2]:>13.5f} {mean[3]:>13.4f} "
        f"{mean[4]:>13.4f}"
    )


if __name__ == "__main__":
    main()
