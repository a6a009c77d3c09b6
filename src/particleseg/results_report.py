"""The evaluation report: a model and tuned ThreshWater on a dataset's test splits.

``python evaluate.py --config-name report`` (conf/report.yaml) predicts the test splits with the
model (resumable, predict's own pipeline), tunes ThreshWater on the train split, scores both per
sample, and writes per-sample CSV, summary JSON, a score figure, example overlays (a success, a
merger, a split, a missed particle per split) and the generated part of ``docs/results.md``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

CONF = Path(__file__).resolve().parents[2] / "conf"
MODEL, BASELINE = "model", "ThreshWater"


def predict_config(cfg: DictConfig) -> DictConfig:
    """The predict config (conf/predict/predict.yaml) for the report's model and splits."""
    pcfg = OmegaConf.load(CONF / "predict" / "predict.yaml")
    pcfg.pop("hydra", None)
    pcfg.paths.root = cfg.paths.root
    pcfg.input, pcfg.model = str(cfg.dataset), cfg.checkpoint
    pcfg.output, pcfg.splits = str(cfg.predictions_dir), list(cfg.splits)
    return OmegaConf.merge(pcfg, cfg.get("predict") or {})


def run_report(cfg: DictConfig) -> dict:
    """Run the whole report (see the module docstring); returns the summary per method."""
    from particleseg.io import load_dataset, read_sample, read_volume
    from particleseg.metrics import evaluate_instances
    from particleseg.metrics.distribution import size_distribution_errors
    from particleseg.metrics.examples import find_examples
    from particleseg.metrics.report import summarize, write_json, write_rows_csv
    from particleseg.metrics.results import plot_example, plot_scores
    from particleseg.tasks import _threshwater_segmenter, find_prediction, predict

    dataset = load_dataset(cfg.dataset)
    out = Path(cfg.output_dir)
    figures = Path(cfg.figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    summaries = predict(predict_config(cfg))
    predict_s = time.perf_counter() - t0
    segment = _threshwater_segmenter(cfg, dataset, out)

    rows, candidates = [], {}
    for split in cfg.splits:
        for entry in dataset.split(split):
            image, reference = read_sample(entry)
            image, reference = np.asarray(image), np.asarray(reference)
            preds = {
                MODEL: np.asarray(
                    read_volume(find_prediction(Path(cfg.predictions_dir), entry.name))
                ),
                BASELINE: segment(image),
            }
            spacing = entry.metadata.spacing or (1, 1, 1)
            for method, pred in preds.items():
                scores = evaluate_instances(pred, reference, **cfg.metrics)
                sizes = size_distribution_errors(pred, reference, spacing)
                rows.append(
                    {"method": method, "sample": entry.name, "split": split, **scores, **sizes}
                )
            for example in find_examples(preds[MODEL], reference, per_kind=1):
                candidates.setdefault((split, example["kind"]), []).append((entry.name, example))
    examples, loaded = [], {}
    for (split, kind), found in sorted(candidates.items()):
        name, example = _typical(found, kind)
        if name not in loaded:  # one sample often shows several kinds: read and segment once
            entry = next(e for e in dataset.split(split) if e.name == name)
            image, reference = (np.asarray(a) for a in read_sample(entry))
            model_pred = np.asarray(read_volume(find_prediction(Path(cfg.predictions_dir), name)))
            loaded = {name: (image, reference, {MODEL: model_pred, BASELINE: segment(image)})}
        image, reference, preds = loaded[name]
        example["figure"] = f"example_{split}_{kind}.png"
        example["sample"] = name
        plot_example(
            figures / example["figure"],
            image,
            reference,
            preds,
            example,
            f"{split} {name}: {kind} (reference ids {_ids(example['ref_ids'])}, "
            f"predicted ids {_ids(example['pred_ids'])})",
        )
        examples.append(example)

    methods = [MODEL, BASELINE]
    summary = {m: summarize([r for r in rows if r["method"] == m]) for m in methods}
    write_rows_csv(out / "per_sample.csv", rows)
    timing = {"predict_s": predict_s, "scans": len(summaries)}
    write_json(
        out / "summary.json",
        {
            "dataset": str(dataset.root),
            "model": cfg.checkpoint,
            "summary": summary,
            "timing": timing,
        },
    )
    plot_scores(figures / "scores.png", rows, methods)
    write_results_markdown(cfg, rows, summary, examples, timing)
    print(f"report written to {cfg.results_md} (figures in {figures}, tables in {out})")
    return summary


def _ids(ids: list[int], most: int = 5) -> str:
    """``[3, 4]``, or ``[3, 4, 5, 6, 7, ...] (812 in all)`` for long lists."""
    if len(ids) <= most:
        return str(ids)
    return f"{str(ids[:most])[:-1]}, ...] ({len(ids)} in all)"


def _typical(found: list[tuple[str, dict]], kind: str) -> tuple[str, dict]:
    """The example to show among each sample's best.

    The largest group for mergers and splits, the smallest missed particle, the largest success.
    """
    if kind == "missed":
        return min(found, key=lambda f: f[1]["size"])
    if kind in ("merger", "splitter"):
        group = "ref_ids" if kind == "merger" else "pred_ids"
        return max(found, key=lambda f: (len(f[1][group]), f[1]["size"]))
    return max(found, key=lambda f: f[1]["size"])


def write_results_markdown(cfg, rows, summary, examples, timing) -> None:
    """The generated part of the results page (between its markers)."""
    from particleseg.metrics.distribution import DIST_KEYS
    from particleseg.metrics.report import SCORES
    from particleseg.metrics.results import markdown_table, replace_between_markers

    md = Path(cfg.results_md)
    rel = Path(cfg.figures_dir).resolve().relative_to(md.parent.resolve())
    parts = [
        "_Generated by `python evaluate.py --config-name report`; do not edit by hand._",
        f"\nDataset `{Path(cfg.dataset).name}`, model `{cfg.checkpoint}`; ThreshWater tuned on the "
        f"train split (grid in conf/baseline/threshwater.yaml). Predicting the "
        f"{timing['scans']} test scans took {timing['predict_s']:.0f} s.",
        "\n### Mean per split\n",
        markdown_table(
            ["split", "method", *SCORES, "particles (ref / pred)"],
            [
                [
                    split,
                    method,
                    *(s["mean"][k] for k in SCORES),
                    f"{s['total']['n_ref']} / {s['total']['n_pred']}",
                ]
                for split in [*cfg.splits, "all"]
                for method, by_split in summary.items()
                if (s := by_split.get(split))
            ],
        ),
        f"\n![scores]({rel / 'scores.png'})\n",
        "### Size distribution\n",
        "Mean absolute relative error, (pred - ref) / ref, of the particle count and of the "
        "equivalent-diameter D10 / D50 / D90, number and volume weighted:\n",
        markdown_table(
            ["split", "method", *DIST_KEYS],
            [
                [split, method, *(s["mean_abs"][k] for k in DIST_KEYS)]
                for split in [*cfg.splits, "all"]
                for method, by_split in summary.items()
                if (s := by_split.get(split))
            ],
        ),
        "\n### Per sample\n",
        markdown_table(
            ["sample", "split", "method", *SCORES, "n_ref", "n_pred"],
            [
                [
                    r["sample"],
                    r["split"],
                    r["method"],
                    *(r[k] for k in SCORES),
                    r["n_ref"],
                    r["n_pred"],
                ]
                for r in rows
            ],
        ),
        "\n### Examples (model predictions; a Z slice through the particle)\n",
    ]
    for ex in examples:
        parts.append(
            f"**{ex['kind']}**, {ex['sample']} ({ex['size']} voxels)\n\n"
            f"![{ex['kind']}]({rel / ex['figure']})\n"
        )
    replace_between_markers(md, "\n".join(parts), "Results")
