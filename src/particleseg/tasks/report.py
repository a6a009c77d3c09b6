"""The evaluation report: a model and the tuned classical baselines on every test set.

``python evaluate.py --config-name report`` (conf/report.yaml) predicts each test set (a split of
a dataset: ``id_test``, the hard test, the independent OOD split) with the model (resumable,
predict's own pipeline), tunes each baseline (ThreshWater, SNOW) on the train split of
``dataset``, scores every method per sample, and writes per-sample CSV, summary JSON, a score
figure, example overlays (a success, a merger, a split, a missed particle per test set) and the
generated part of ``docs/results.md``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from particleseg.config import compose_config
from particleseg.entry import hydra_value
from particleseg.evaluation import (
    baseline_segmenter,
    find_prediction,
    sample_digest,
    scans_digest,
    score_sample,
)
from particleseg.tasks.predict import predict

log = logging.getLogger(__name__)

MODEL = "model"


def predict_config(cfg: DictConfig, dataset: str, split: str, output: Path) -> DictConfig:
    """The predict config (conf/predict.yaml, composed) for one test set of the report."""
    pcfg = compose_config("predict", [f"paths.root={hydra_value(str(cfg.paths.root))}"])
    pcfg.input, pcfg.checkpoint = str(dataset), cfg.checkpoint
    pcfg.output, pcfg.splits = str(output), [split]
    return OmegaConf.merge(pcfg, cfg.get("predict") or {})


def load_test_sets(cfg: DictConfig) -> list[tuple[str, Any, str]]:
    """``(name, dataset, split)`` of every test set, datasets loaded (a clear error if missing)."""
    from particleseg.io import load_dataset

    out = []
    for name, spec in cfg.tests.items():
        path = Path(spec.dataset)
        if not (path / "dataset.json").is_file():
            build = spec.get("build") or "see README.md, Synthetic data"
            raise ValueError(f"{path / 'dataset.json'}: test set {name!r} not built ({build})")
        out.append((str(name), load_dataset(path), str(spec.split)))
    return out


def baseline_segmenters(cfg: DictConfig, dataset, out: Path) -> dict[str, Any]:
    """Display name -> ``segment(image)`` for each of ``cfg.baselines``, tuned on train."""
    segmenters = {}
    for base in cfg.baselines.values():
        segment, name = baseline_segmenter(OmegaConf.create({"baseline": base}), dataset, out)
        segmenters[name] = segment
    return segmenters


def run_report(cfg: DictConfig) -> dict:
    """Run the whole report (see the module docstring); returns the summary per method."""
    from particleseg.evaluation.tables import summarize, write_json, write_rows_csv
    from particleseg.io import load_dataset, read_sample, read_volume
    from particleseg.metrics.examples import find_examples
    from particleseg.viz.figures import plot_example, plot_scores

    tests = load_test_sets(cfg)
    out = Path(cfg.output_dir)
    # results_md=null scores a model (an ablation row, a candidate) without touching docs/
    figures = Path(cfg.figures_dir) if cfg.results_md else out / "figures"
    out.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)

    # the baselines first: their parameter files are ready (for other rows) before the long part
    baselines = baseline_segmenters(cfg, load_dataset(cfg.dataset), out)
    t0 = time.perf_counter()
    n_scans = 0
    for name, dataset, split in tests:
        n_scans += len(predict(predict_config(cfg, dataset.root, split, _pred_dir(cfg, name))))
    predict_s = time.perf_counter() - t0

    def predictions(name: str, entry, image: np.ndarray) -> dict[str, np.ndarray]:
        found = find_prediction(_pred_dir(cfg, name), entry.name)
        model = {MODEL: np.asarray(read_volume(found))}
        return {**model, **{m: segment(image) for m, segment in baselines.items()}}

    rows, candidates, digests = [], {}, {}
    for name, dataset, split in tests:
        for entry in dataset.split(split):
            image, reference = (np.asarray(a) for a in read_sample(entry))
            digests.setdefault(name, []).append((entry.name, sample_digest(image, reference)))
            preds = predictions(name, entry, image)
            spacing = entry.metadata.spacing
            for method, pred in preds.items():
                scores = score_sample(pred, reference, spacing, cfg.metrics)
                rows.append({"method": method, "sample": entry.name, "split": name, **scores})
            for example in find_examples(preds[MODEL], reference, per_kind=1):
                candidates.setdefault((name, example["kind"]), []).append((entry, example))
    examples = []
    for (name, kind), found in sorted(candidates.items(), key=lambda item: item[0]):
        entry, example = _typical(found, kind)
        image, reference = (np.asarray(a) for a in read_sample(entry))
        example["figure"] = f"example_{name}_{kind}.png"
        example["sample"] = f"{name} {entry.name}"
        plot_example(
            figures / example["figure"],
            image,
            reference,
            predictions(name, entry, image),
            example,
            f"{name} {entry.name}: {kind} (reference ids {_ids(example['ref_ids'])}, "
            f"predicted ids {_ids(example['pred_ids'])})",
        )
        examples.append(example)

    methods = [MODEL, *baselines]
    summary = {m: summarize([r for r in rows if r["method"] == m]) for m in methods}
    write_rows_csv(out / "per_sample.csv", rows)
    timing = {"predict_s": predict_s, "scans": n_scans}
    # which scans exactly: a seed regenerated on another CPU can give other ones
    scans = {
        name: {"sha256": scans_digest(found), "samples": dict(found)}
        for name, found in digests.items()
    }
    write_json(
        out / "summary.json",
        {
            "tests": {name: [str(d.root), split] for name, d, split in tests},
            "scans": scans,
            "baselines_tuned_on": str(Path(cfg.dataset)),
            "model": cfg.checkpoint,
            "summary": summary,
            "timing": timing,
        },
    )
    plot_scores(figures / "scores.png", rows, methods)
    if cfg.results_md:
        write_results_markdown(cfg, tests, rows, summary, examples, timing, scans)
        if cfg.get("readme"):
            write_readme_table(Path(cfg.readme), [t[0] for t in tests], summary)
    print(f"report: {cfg.results_md or 'no page'} (figures in {figures}, tables in {out})")
    return summary


def _pred_dir(cfg: DictConfig, name: str) -> Path:
    return Path(cfg.predictions_dir) / name


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


def write_results_markdown(cfg, tests, rows, summary, examples, timing, scans) -> None:
    """The generated part of the results page (between its markers).

    ``scans`` is summary.json's record of the scans scored (test set -> ``sha256``): the page
    names each test set's digest, so a later report can tell whether it scored the same scans.
    """
    from particleseg.evaluation.tables import REPORT_SCORES, markdown_table, replace_between_markers
    from particleseg.metrics.distribution import DIST_KEYS

    md = Path(cfg.results_md)
    rel = Path(cfg.figures_dir).resolve().relative_to(md.parent.resolve())
    parts = [
        "_Generated by `python evaluate.py --config-name report`; do not edit by hand._",
        f"\nModel `{cfg.checkpoint}`; {', '.join(m for m in summary if m != MODEL)} tuned on "
        f"the train split of `{Path(cfg.dataset).name}` (grids in "
        "src/particleseg/conf/baseline/). Test sets: "
        + "; ".join(
            f"`{n}` = split `{split}` of `{d.root.name}` (scans {scans[n]['sha256'][:12]})"
            for n, d, split in tests
        )
        + f". Predicting the {timing['scans']} test scans took {timing['predict_s']:.0f} s.",
        "\n### Mean per test set\n",
        markdown_table(
            ["split", "method", *REPORT_SCORES, "particles (ref / pred)"],
            [
                [
                    split,
                    method,
                    *(s["mean"][k] for k in REPORT_SCORES),
                    f"{s['total']['n_ref']} / {s['total']['n_pred']}",
                ]
                for split in [*(t[0] for t in tests), "all"]
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
                for split in [*(t[0] for t in tests), "all"]
                for method, by_split in summary.items()
                if (s := by_split.get(split))
            ],
        ),
        "\n### Per sample\n",
        markdown_table(
            ["sample", "split", "method", *REPORT_SCORES, "n_ref", "n_pred"],
            [
                [
                    r["sample"],
                    r["split"],
                    r["method"],
                    *(r[k] for k in REPORT_SCORES),
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


def write_readme_table(readme: Path, tests: list[str], summary: dict) -> None:
    """The mean scores per test set and method, between the README's ``results`` markers."""
    from particleseg.evaluation.tables import markdown_table, replace_between_markers

    keys = ("f1", "f1_match", "f1_instance", "merger_ratio", "splitter_ratio", "pq")
    header = ["test set", "method", "F1", "F1_match", "F1_instance", "MergerRatio"]
    header += ["SplitterRatio", "PQ"]
    rows = [
        [test, method, *(by_test[test]["mean"][k] for k in keys)]
        for test in tests
        for method, by_test in summary.items()
        if test in by_test
    ]
    replace_between_markers(readme, markdown_table(header, rows), "Results", name="results")
