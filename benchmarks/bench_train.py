"""Training speed and memory on the CPU, and whether the data pipeline keeps up.

Prints, for each experiment (cpu_small, paper at batch 1):
- seconds per training iteration (forward, deep-supervision loss, backward, gradient clipping at
  12, SGD step) with the experiment's precision as train.py resolves it on this CPU (cpu_small:
  bfloat16 autocast where the CPU has bf16, else fp32; paper: fp32), on random patches of the
  experiment's size, median over a few iterations after one warm-up;
- peak RSS of a child process that only builds the model and trains;
and for cpu_small, on the prepared synthetic dataset (python -m particleseg.synth):
- samples per second of the data pipeline alone (crop, touching paste, nnU-Net augmentation,
  collate) through the DataLoader with 2 workers, against the samples per second the training
  step consumes: the pipeline must be at least 2x faster.
- with --appearance-order DATASET (a dataset with phase maps, e.g. data/synth_wide): seconds per
  training item of experiment=generalist's pipeline in one process, side by side: the appearance
  re-rendered on the output patch after the spatial step (the pipeline) against re-rendered on
  the whole initial crop before it (the earlier order).

Usage: python benchmarks/bench_train.py [--dataset data/synth] [--iters 5] [--skip-paper]
       python benchmarks/bench_train.py --appearance-order data/synth_wide [--items 20]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from particleseg.config import CONF_DIR

ROOT = Path(__file__).resolve().parents[1]


def compose(experiment: str, overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    import particleseg.config  # noqa: F401

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(
            config_name="train",
            overrides=[f"experiment={experiment}", "paths.output_dir=/tmp", *overrides],
        )


def train_step_child(experiment: str, batch: int | None, iters: int) -> dict:
    """Runs in a child process: time training iterations, report peak RSS."""
    import torch
    from hydra.utils import instantiate

    cfg = compose(experiment, [f"paths.root={ROOT}"])
    batch = batch or cfg.data.batch_size
    net = instantiate(cfg.model.net)
    loss_fn = instantiate(cfg.model.module.loss)
    opt = instantiate(cfg.model.module.optimizer)(params=net.parameters())
    from particleseg.precision import resolve_training_precision

    precision = resolve_training_precision(cfg.trainer.precision, "cpu")  # as train.py here
    bf16 = precision.startswith("bf16")
    size = tuple(cfg.patch_size)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, *size, generator=g)
    y = torch.randint(0, 3, (batch, 1, *size), generator=g)
    net.train()
    times = []
    for i in range(iters + 1):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
        loss = loss_fn([o.float() for o in out], y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 12.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i:
            times.append(time.perf_counter() - t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {
        "experiment": experiment,
        "batch": batch,
        "patch": list(size),
        "precision": precision,
        "params_m": sum(p.numel() for p in net.parameters()) / 1e6,
        "s_per_iter": statistics.median(times),
        "peak_rss_gb": rss,
        "threads": torch.get_num_threads(),
    }


def data_pipeline(dataset: str, workers: int, batches: int) -> dict:
    from hydra.utils import instantiate

    cfg = compose(
        "cpu_small", [f"dataset={dataset}", f"data.num_workers={workers}", f"paths.root={ROOT}"]
    )
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    loader = dm.train_dataloader()
    it = iter(loader)
    next(it)  # worker start-up (spawn, imports) is not part of the steady state
    for _ in range(2):
        next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    dt = time.perf_counter() - t
    return {
        "workers": workers,
        "batch": cfg.data.batch_size,
        "samples_per_s": batches * cfg.data.batch_size / dt,
        "initial_patch": list(dm.train_set.initial_patch_size),
        "templates": len(getattr(dm.train_set.touching, "templates", []) or []),
    }


class _WholeCrop:
    """The augmentation without ``split()``: TrainPatches then renders before it (earlier order)."""

    def __init__(self, augmentation) -> None:
        self.augmentation = augmentation

    def set_random_state(self, seed=None, state=None):
        self.augmentation.set_random_state(seed, state)
        return self

    def __call__(self, data):
        return self.augmentation(data)


def appearance_order(dataset: str, items: int) -> None:
    import torch
    from hydra.utils import instantiate

    from particleseg.data.datasets import TrainPatches

    torch.set_num_threads(1)
    cfg = compose("generalist", [f"dataset={dataset}", "data.num_workers=0", f"paths.root={ROOT}"])
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    ts = dm.train_set
    before = TrainPatches(
        ts.samples,
        ts.patch_size,
        ts.initial_patch_size,
        ts.length,
        ts.oversample_fg,
        touching=ts.touching,
        augmentation=_WholeCrop(ts.augmentation),
        appearance=ts.appearance,
    )
    print(
        f"\nappearance randomization, experiment=generalist on {dataset} (initial crop "
        f"{'x'.join(map(str, ts.initial_patch_size))}, patch {'x'.join(map(str, ts.patch_size))}"
        f", {items} items, 1 thread, same seeds)"
    )
    for name, pipeline in (("on the output patch", ts), ("on the initial crop", before)):
        torch.manual_seed(0)
        pipeline[0]
        t = time.perf_counter()
        for i in range(items):
            pipeline[i]
        print(f"  {name:<22} {(time.perf_counter() - t) / items:6.3f} s per item")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(ROOT / "data" / "synth"))
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--skip-paper", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("EXPERIMENT", "BATCH", "ITERS"))
    parser.add_argument("--appearance-order", metavar="DATASET")
    parser.add_argument("--items", type=int, default=20)
    args = parser.parse_args()
    if args.appearance_order:
        appearance_order(args.appearance_order, args.items)
        return
    if args.child:
        exp, batch, iters = args.child
        print(json.dumps(train_step_child(exp, int(batch) or None, int(iters))))
        return

    def child(exp: str, batch: int, iters: int) -> dict:
        out = subprocess.run(
            [sys.executable, __file__, "--child", exp, str(batch), str(iters)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])

    runs = [child("cpu_small", 0, args.iters)]
    if not args.skip_paper:
        runs.append(child("paper", 1, max(2, args.iters // 2)))
    print("\ntraining step on the CPU (random patches; median after one warm-up)")
    print(
        f"{'experiment':<11} {'batch':>5} {'patch':>13} {'precision':>10} {'params':>8} "
        f"{'s/iter':>8} {'samples/s':>10} {'peak RSS':>9}"
    )
    for r in runs:
        print(
            f"{r['experiment']:<11} {r['batch']:>5} {'x'.join(map(str, r['patch'])):>13} "
            f"{r['precision']:>10} {r['params_m']:>7.1f}M {r['s_per_iter']:>8.2f} "
            f"{r['batch'] / r['s_per_iter']:>10.2f} {r['peak_rss_gb']:>7.2f}GB"
        )
    if not Path(args.dataset, "dataset.json").exists():
        print(
            f"\n{args.dataset}/dataset.json not found: run `python -m particleseg.synth` first "
            "for the data-pipeline figure"
        )
        return
    dp = data_pipeline(args.dataset, 2, args.batches)
    train_rate = runs[0]["batch"] / runs[0]["s_per_iter"]
    print(
        f"\ndata pipeline alone, cpu_small on {args.dataset} ({dp['workers']} workers, initial "
        f"crop {'x'.join(map(str, dp['initial_patch']))}, {dp['templates']} paste templates)"
    )
    print(
        f"  {dp['samples_per_s']:.2f} samples/s vs {train_rate:.2f} samples/s consumed by the "
        f"training step: {dp['samples_per_s'] / train_rate:.1f}x (needs >= 2x)"
    )


if __name__ == "__main__":
    main()
