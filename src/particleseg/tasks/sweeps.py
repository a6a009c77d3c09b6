"""Hydra callback that collects the result of every run of a multirun into one table."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"


class SweepSummary(Callback):
    """On multirun end, write ``sweep_summary.csv`` (overrides + metric per run) in the sweep dir.

    Each training run writes ``result.json`` (its overrides, best metric and checkpoint) into its
    own folder; this reads them back, so it also works when runs went to other processes.

    Args:
        metric: Name of the metric column (for the printed table).
    """

    def __init__(self, metric: str = "val/f1_instance") -> None:
        self.metric = metric

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Collect every run's ``result.json`` into ``sweep_summary.csv`` and print it."""
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = []
        for path in sorted(sweep_dir.glob(f"*/{RESULT_FILE}")):
            result = json.loads(path.read_text())
            rows.append(
                {
                    "run": path.parent.name,
                    **result.get("overrides", {}),
                    self.metric: result.get("best_score"),
                }
            )
        if not rows:
            log.warning("no %s found under %s", RESULT_FILE, sweep_dir)
            return
        keys = list(dict.fromkeys(k for r in rows for k in r))
        out = sweep_dir / "sweep_summary.csv"
        with open(out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        best = max(rows, key=lambda r: -1.0 if r[self.metric] is None else r[self.metric])
        log.info("sweep of %d runs written to %s; best: %s", len(rows), out, best)
        print(f"sweep summary: {out}")
        for r in rows:
            print("  " + ", ".join(f"{k}={r[k]}" for k in keys))
