"""Tune a model's post-processing thresholds on labelled validation scans.

    python -m particleseg.inference.tune MODEL DATASET OUT.json [--split train] [--work DIR]

predict runs the model on every scan of the split (keeping the border-core maps; resumable, in
``--work``), then :func:`particleseg.postprocess.tuning.tune_postprocess` picks the thresholds
that maximize the mean F1_instance. ``OUT.json`` holds them under ``params`` with the whole
grid's scores; ``python -m particleseg.inference.export CKPT MODEL --postprocess OUT.json``
stores them in the model file, and predict then uses them by default.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import zarr

from particleseg.inference.inputs import list_scans
from particleseg.inference.model import load_checkpoint
from particleseg.inference.run_state import file_sha256
from particleseg.io import load_dataset, read_volume
from particleseg.io.atomic import write_json_atomic
from particleseg.postprocess.tuning import DEFAULT_GRID, tune_postprocess


def tune_model_thresholds(
    model_path: str | Path,
    dataset: str | Path,
    out: str | Path,
    *,
    split: str = "train",
    work: str | Path | None = None,
    grid: dict | None = None,
    trainer=None,
    inference: dict | None = None,
) -> dict:
    """Predict the split's scans, grid-search the thresholds, write ``out`` (JSON).

    Args:
        model_path: a train.py checkpoint or an exported model file.
        dataset: folder holding ``dataset.json`` whose ``split`` has reference labels.
        out: the JSON file to write (atomically).
        split: the split to tune on: scans the model did not train on.
        work: where predict's per-scan outputs go (default ``OUT`` without suffix + ``_work``);
            finished scans are reused when the command runs again.
        grid: values per threshold (default :data:`DEFAULT_GRID`).
        trainer: a ``lightning.Trainer`` for the network (default: one device, auto).
        inference: predict's inference settings (default predict's).

    Returns:
        The tuning result (also written to ``out``).

    Raises:
        ValueError: no labelled scans in the split, or an unreadable model or dataset.
    """
    from particleseg.inference.lightning import quiet_trainer
    from particleseg.inference.pipeline import predict_scan

    out = Path(out)
    work = Path(work) if work is not None else out.with_name(out.stem + "_work")
    entries = {e.name: e for e in load_dataset(dataset).split(split)}
    missing = [n for n, e in entries.items() if e.label is None]
    if not entries or missing:
        raise ValueError(
            f"{Path(dataset) / 'dataset.json'}: tuning needs labelled scans in split {split!r} "
            f"({'none there' if not entries else 'unlabelled: ' + ', '.join(missing)})"
        )
    model = load_checkpoint(model_path)
    trainer = trainer or quiet_trainer()
    border_cores, references = [], []
    for scan in list_scans(dataset, splits=[split]):
        predict_scan(
            scan,
            work / scan.name,
            model,
            trainer,
            inference=inference,
            outputs={"border_core": True},
            config={"tuning": str(out)},
        )
        border_cores.append(zarr.open_array(str(work / scan.name / "border_core.zarr"))[...])
        references.append(np.asarray(read_volume(entries[scan.name].label)))
    result = tune_postprocess(border_cores, references, grid=grid or DEFAULT_GRID)
    result.update(
        model=str(model_path),
        model_sha256=file_sha256(Path(model_path)),
        dataset=str(Path(dataset).resolve()),
        split=split,
        samples=sorted(entries),
    )
    write_json_atomic(out, result)
    return result


def main(argv: list[str] | None = None) -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--split", default="train")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--grid", type=json.loads, default=None, help="JSON: {key: [values]}")
    args = parser.parse_args(argv)
    try:
        result = tune_model_thresholds(
            args.model, args.dataset, args.out, split=args.split, work=args.work, grid=args.grid
        )
    except ValueError as err:
        parser.exit(2, f"tune: {err}\n")
    print(
        f"best {result['metric']} {result['score']:.3f} over {result['n_scans']} scans with "
        f"{result['params']} -> {args.out}"
    )


if __name__ == "__main__":
    main()
