"""The evaluate task: score predictions, or a classical baseline, against a dataset's labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from particleseg.evaluation import baseline_segmenter, find_prediction, score_sample


def evaluate(cfg: DictConfig) -> dict:
    """Score predictions, or a classical baseline, against a dataset's references.

    The baseline is ``cfg.baseline`` (``baseline=threshwater``, the default, or ``baseline=snow``),
    tuned on the train split unless ``baseline.params_file`` is given.

    Writes ``per_sample.csv``, ``summary.json`` and one bar chart PNG per metric into
    ``cfg.output_dir`` and prints the table.

    Returns:
        The summary: per split, the mean of every score and the summed counts.
    """
    from particleseg.evaluation.tables import (
        REPORT_SCORES,
        format_distribution_table,
        format_table,
        summarize,
        write_json,
        write_rows_csv,
    )
    from particleseg.io import load_dataset, read_sample, read_volume
    from particleseg.viz.figures import plot_metric_bars

    if cfg.get("task") == "report":  # python evaluate.py --config-name report
        from particleseg.tasks.report import run_report

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
        segmenter, method = baseline_segmenter(cfg, dataset, out_dir)

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
        scores = score_sample(pred, reference, entry.metadata.spacing, cfg.metrics)
        rows.append({"sample": entry.name, "split": entry.split, **scores})

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
    for metric in REPORT_SCORES:
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
