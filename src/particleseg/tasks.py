"""What the entry points call: ``train(cfg)``, ``predict(cfg)``, ``evaluate(cfg)``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

VOLUME_SUFFIXES = (".zarr", ".tif", ".tiff", ".npy")


def train(cfg: DictConfig) -> float | None:
    """Train the border-core U-Net; return the best validation metric (for sweepers)."""
    from particleseg.training import run

    return run(cfg)


def predict(cfg: DictConfig) -> list[dict]:
    """Segment a scan, or every sample of a dataset folder, with a trained model.

    Writes per scan ``OUTPUT/NAME/`` (see :mod:`particleseg.inference.pipeline`) and prints a
    one-line summary of each.

    Returns:
        The summaries (on global rank 0; empty on the other ranks).
    """
    from hydra.utils import instantiate

    from particleseg.inference.inputs import list_scans
    from particleseg.inference.model import load_checkpoint, resolve_model_path
    from particleseg.inference.pipeline import predict_scan

    source = cfg.get("input")
    if source in (None, ""):
        from particleseg.synth.sample import bundled_sample

        source = str(bundled_sample())
        print(f"no input=... given: segmenting the bundled sample scan {source}")
    sizes = {
        "particle_size": cfg.particle_size,
        "particle_size_px": cfg.particle_size_px,
        "spacing": OmegaConf.to_container(cfg.spacing) if cfg.spacing is not None else None,
    }
    splits = list(cfg.splits) if cfg.get("splits") else None
    scans = list_scans(source, splits=splits, **sizes)
    model = load_checkpoint(resolve_model_path(cfg.get("model")))
    trainer = instantiate(cfg.trainer)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    out_root = Path(cfg.output)
    single = len(scans) == 1 and not (Path(source) / "dataset.json").exists()
    summaries = []
    for scan in scans:
        out_dir = out_root if single else out_root / scan.name
        summary = predict_scan(
            scan,
            out_dir,
            model,
            trainer,
            inference=OmegaConf.to_container(cfg.inference, resolve=True),
            postprocess=OmegaConf.to_container(cfg.postprocess, resolve=True),
            outputs=OmegaConf.to_container(cfg.outputs, resolve=True),
            dask=OmegaConf.to_container(cfg.dask, resolve=True),
            overwrite=bool(cfg.overwrite),
            force=bool(cfg.force),
            max_hours=float(cfg.max_hours),
            config=resolved,
        )
        if summary is not None:
            summaries.append(summary)
            print(format_predict_summary(summary, out_dir))
    return summaries


def format_predict_summary(summary: dict, out_dir: Path) -> str:
    """The lines predict prints per scan: particles, sizes, time, where the outputs are."""
    size = summary["particle_size"]["used_px_zyx"]
    lines = [
        f"{summary['name']}: {summary['particles']} particles (mean diameter used "
        f"{size[0]:.1f} voxels, from {summary['particle_size']['source']}), "
        f"{summary['timings_s']['this_run_total']:.0f} s"
    ]
    dist = summary.get("size_distribution") or {}
    if dist.get("count"):
        unit = dist["unit"]
        lines.append(
            "  equivalent diameter D10 / D50 / D90: "
            + " / ".join(f"{dist[f'D{p}_number']:.4g}" for p in (10, 50, 90))
            + f" {unit} by number, "
            + " / ".join(f"{dist[f'D{p}_volume']:.4g}" for p in (10, 50, 90))
            + f" {unit} by volume"
        )
    for warning in summary.get("warnings") or []:
        lines.append(f"  warning: {warning}")
    files = sorted({*((summary.get("disk_bytes") or {}).get("outputs") or {}), "summary.json"})
    lines.append(f"  -> {out_dir}: {', '.join(files)}")
    return "\n".join(lines)


def find_prediction(folder: Path, name: str) -> Path:
    """The prediction of sample ``name`` in ``folder``: ``NAME.{zarr,tif,tiff,npy}``.

    Also accepts a per-sample folder ``NAME/instances.{zarr,tif,tiff,npy}``.
    """
    candidates = [folder / f"{name}{s}" for s in VOLUME_SUFFIXES]
    candidates += [folder / name / f"instances{s}" for s in VOLUME_SUFFIXES]
    found = [p for p in candidates if p.exists()]
    if not found:
        raise ValueError(
            f"{folder}: no prediction for sample {name!r} (looked for "
            f"{', '.join(p.name for p in candidates[: len(VOLUME_SUFFIXES)])} and "
            f"{name}/instances.*)"
        )
    return found[0]


def _baseline_segmenter(cfg: DictConfig, dataset, out_dir: Path):
    """The configured baseline with parameters from a file, from tuning on train, or as given.

    ``cfg.baseline.name`` picks the baseline (``threshwater``, the default, or ``snow``; see
    :data:`particleseg.baselines.BASELINES`). A tuning run saves ``<name>_params.json`` in
    ``out_dir``; untuned parameters the tuner stores (ThreshWater's ``connectivity``, SNOW's
    ``min_size``) come from ``cfg.baseline.segment`` unless the ``tune`` section sets them.

    Returns:
        ``(segment, name)``: ``segment(image) -> labels`` and the baseline's display name.
    """
    from hydra.utils import instantiate

    from particleseg.baselines import BASELINES, load_params, save_params
    from particleseg.io import read_sample

    base = cfg.baseline
    key = base.get("name") or "threshwater"
    if key not in BASELINES:
        raise ValueError(f"baseline.name={key!r}: unknown baseline; one of {sorted(BASELINES)}")
    spec = BASELINES[key]
    params: dict = {}
    if base.get("params_file"):
        params = load_params(base.params_file, key)["params"]
        log.info("%s parameters from %s: %s", spec.name, base.params_file, params)
    elif base.get("tune"):
        train = dataset.split("train")[: base.tune.max_samples]
        if not train:
            raise ValueError(
                f"{dataset.root}/dataset.json: no train samples to tune {spec.name} on"
            )
        images, labels = [], []
        for entry in train:
            image, label = read_sample(entry)
            images.append(np.asarray(image))
            labels.append(np.asarray(label))
        grid = OmegaConf.to_container(base.tune, resolve=True)
        grid.pop("max_samples", None)
        segment_cfg = base.get("segment") or {}
        for name in spec.fixed:
            if name not in grid and segment_cfg.get(name) is not None:
                grid[name] = segment_cfg[name]
        log.info("tuning %s on %d train samples", spec.name, len(train))
        result = spec.tune(images, labels, **grid)
        save_params(out_dir / f"{key}_params.json", result)
        params = result["params"]
        log.info(
            "tuned %s: %s (train %s %.3f)", spec.name, params, result["metric"], result["score"]
        )
    segment = instantiate(base.segment)
    return (lambda image: segment(image, **params)), spec.name


def evaluate(cfg: DictConfig) -> dict:
    """Score predictions, or a classical baseline, against a dataset's references.

    The baseline is ``cfg.baseline`` (``baseline=threshwater``, the default, or ``baseline=snow``),
    tuned on the train split unless ``baseline.params_file`` is given.

    Writes ``per_sample.csv``, ``summary.json`` and one bar chart PNG per metric into
    ``cfg.output_dir`` and prints the table.

    Returns:
        The summary: per split, the mean of every score and the summed counts.
    """
    from particleseg.io import load_dataset, read_sample, read_volume
    from particleseg.metrics import evaluate_instances
    from particleseg.metrics.distribution import size_distribution_errors
    from particleseg.metrics.report import (
        SCORES,
        format_distribution_table,
        format_table,
        plot_metric_bars,
        summarize,
        write_json,
        write_rows_csv,
    )

    if cfg.get("task") == "report":  # python evaluate.py --config-name report
        from particleseg.results_report import run_report

        return run_report(cfg)
    if cfg.get("dataset") in (None, "", "???"):
        raise ValueError("evaluate.py needs a dataset folder: python evaluate.py dataset=PATH")
    dataset = load_dataset(cfg.dataset)
    out_dir = Path(cfg.output_dir)  # made by the first file written into it
    entries = [e for split in cfg.splits for e in dataset.split(split)]
    if not entries:
        raise ValueError(f"{dataset.root}/dataset.json: no samples in splits {list(cfg.splits)}")

    if cfg.get("predictions"):
        pred_dir = Path(cfg.predictions)
        paths = {e.name: find_prediction(pred_dir, e.name) for e in entries}
        method = f"predictions in {pred_dir}"

        def segment_entry(entry, image):
            return np.asarray(read_volume(paths[entry.name]))
    else:
        segmenter, method = _baseline_segmenter(cfg, dataset, out_dir)

        def segment_entry(entry, image):
            return segmenter(np.asarray(image))

    rows = []
    for entry in _progress(entries, "evaluate"):
        image, reference = read_sample(entry)
        if reference is None:
            raise ValueError(f"{dataset.root}/dataset.json: sample {entry.name!r} has no label")
        pred = segment_entry(entry, image)
        reference = np.asarray(reference)
        if pred.shape != reference.shape:
            raise ValueError(
                f"prediction for {entry.name!r} has shape {pred.shape}, its reference "
                f"{entry.label} has shape {reference.shape}"
            )
        scores = evaluate_instances(pred, reference, **cfg.metrics)
        sizes = size_distribution_errors(pred, reference, entry.metadata.spacing or (1, 1, 1))
        rows.append({"sample": entry.name, "split": entry.split, **scores, **sizes})

    summary = summarize(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_rows_csv(out_dir / "per_sample.csv", rows)
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - composed outside a Hydra run (no ${hydra:...} values)
        config = OmegaConf.to_container(cfg, resolve=False)
    write_json(
        out_dir / "summary.json",
        {"dataset": str(dataset.root), "method": method, "splits": summary, "config": config},
    )
    for metric in SCORES:
        plot_metric_bars(out_dir / f"{metric}.png", rows, metric, f"{metric} — {method}")
    print(f"\n{method} on {dataset.root}\n")
    print(format_table(rows, summary))
    print("\nsize distribution, relative error of the prediction (pred - ref) / ref:\n")
    print(format_distribution_table(rows, summary))
    print(f"\nwritten to {out_dir}")
    return summary


def _progress(items, desc: str):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="sample", leave=False)
