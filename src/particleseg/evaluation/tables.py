"""The evaluation's tables: per-sample rows summarised per split, CSV, JSON and Markdown.

Numbers and text only (no plotting, no torch); the figures are :mod:`particleseg.viz.figures`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from particleseg.io.atomic import write_bytes_atomic, write_json_atomic
from particleseg.metrics import SUM_KEYS, pooled_scores
from particleseg.metrics.distribution import DIST_KEYS

#: The scores a report shows per sample and split (mixed directions: the merger and splitter
#: ratios are lower-is-better; :data:`particleseg.metrics.SCORE_KEYS` holds higher-is-better).
REPORT_SCORES = ("f1", "f1_match", "f1_instance", "merger_ratio", "splitter_ratio", "pq")

COUNTS = ("n_ref", "n_pred", "tp", "fp", "fn", "n_mergers", "n_splitters")

BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"


def summarize(rows: Sequence[dict]) -> dict:
    """Mean of every score per split (and over all samples), and summed counts.

    Args:
        rows: one dict per sample with ``sample``, ``split`` and the keys of
            :func:`particleseg.metrics.evaluate_instances`.

    Returns:
        ``{split: {"n_samples": int, "mean": {score: float}, "total": {count: int}}}`` with an
        extra ``"all"`` entry; rows with the size-distribution errors of
        :func:`particleseg.metrics.distribution.size_distribution_errors` add
        ``"mean_abs": {key: mean of |relative error|}`` (NaNs skipped); rows with the sums of
        :data:`particleseg.metrics.SUM_KEYS` add ``"pooled": {score: float}``, the scores of the
        split's scans pooled as one (:func:`particleseg.metrics.pooled_scores`) beside the
        per-scan mean.
    """
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["split"], []).append(row)
    if len(groups) > 1:
        groups["all"] = list(rows)
    return {
        split: {
            "n_samples": len(members),
            "mean": {k: sum(float(r[k]) for r in members) / len(members) for k in REPORT_SCORES},
            "total": {k: int(sum(int(r[k]) for r in members)) for k in COUNTS},
            **({"mean_abs": _mean_abs(members)} if DIST_KEYS[0] in members[0] else {}),
            **(
                {"pooled": {k: pooled_scores(members)[k] for k in REPORT_SCORES}}
                if all(k in members[0] for k in SUM_KEYS)
                else {}
            ),
        }
        for split, members in groups.items()
    }


def _mean_abs(rows: Sequence[dict]) -> dict[str, float]:
    out = {}
    for k in DIST_KEYS:
        values = [abs(float(r[k])) for r in rows if not math.isnan(float(r[k]))]
        out[k] = sum(values) / len(values) if values else float("nan")
    return out


def _aligned(lines: list[list[str]], n_rows: int) -> str:
    """Columns padded to width; rules under the header and after the ``n_rows`` sample rows."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    rule = "  ".join("-" * w for w in widths)
    out.insert(1, rule)
    out.insert(n_rows + 2, rule)
    return "\n".join(out)


def format_distribution_table(rows: Sequence[dict], summary: dict) -> str:
    """A plain-text table of size-distribution errors.

    Per sample the signed relative errors of the count and of D10/D50/D90 (volume weighted),
    per split their mean absolute values.
    """
    keys = ["count_rel_error", *(f"d{p}_volume_rel_error" for p in (10, 50, 90))]
    header = ["sample", "split", "count", "D10 (vol)", "D50 (vol)", "D90 (vol)"]
    lines = [header]
    lines += [[r["sample"], r["split"], *(f"{float(r[k]):+.3f}" for k in keys)] for r in rows]
    lines += [
        [f"mean |.| ({s['n_samples']})", split, *(f"{s['mean_abs'][k]:.3f}" for k in keys)]
        for split, s in summary.items()
        if "mean_abs" in s
    ]
    return _aligned(lines, n_rows=len(rows))


def format_table(rows: Sequence[dict], summary: dict) -> str:
    """A plain-text table of per-sample scores followed by the per-split means."""
    header = ["sample", "split", *REPORT_SCORES, "n_ref", "n_pred"]
    lines = [header]
    for r in rows:
        lines.append(
            [
                r["sample"],
                r["split"],
                *(f"{r[k]:.3f}" for k in REPORT_SCORES),
                str(r["n_ref"]),
                str(r["n_pred"]),
            ]
        )
    for split, s in summary.items():
        lines.append(
            [
                f"mean ({s['n_samples']})",
                split,
                *(f"{s['mean'][k]:.3f}" for k in REPORT_SCORES),
                str(s["total"]["n_ref"]),
                str(s["total"]["n_pred"]),
            ]
        )
    return _aligned(lines, n_rows=len(rows))


def write_rows_csv(path: Path, rows: Sequence[dict]) -> None:
    """Write one CSV row per sample (atomically); a ``method`` key becomes the first column."""
    fields = ["sample", "split", *REPORT_SCORES, "sq", "rq", *COUNTS, "pq_tp", "pq_fp", "pq_fn"]
    if rows and DIST_KEYS[0] in rows[0]:
        fields += list(DIST_KEYS)
    if rows and "method" in rows[0]:
        fields.insert(0, "method")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(Path(path), buf.getvalue().encode())


def write_json(path: Path, obj) -> None:
    """Write JSON (atomically)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, obj)


def read_metric_history(paths: Sequence[Path]) -> dict[str, list[tuple[int, float]]]:
    """``{metric: [(epoch, value), ...]}`` from Lightning CSVLogger ``metrics.csv`` files.

    Several files (``version_0``, ``version_1`` after a resume) are concatenated in order; a
    later value for the same epoch replaces an earlier one.
    """
    history: dict[str, dict[int, float]] = {}
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if not row.get("epoch"):
                    continue
                epoch = int(float(row["epoch"]))
                for key, value in row.items():
                    if key in ("epoch", "step") or value in ("", None):
                        continue
                    history.setdefault(key, {})[epoch] = float(value)
    return {k: sorted(v.items()) for k, v in history.items()}


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown_table(header: Sequence[str], lines: Sequence[Sequence]) -> str:
    """A GitHub Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(v) for v in line) + " |" for line in lines]
    return "\n".join(out)


def replace_between_markers(path: Path, generated: str, heading: str, name: str = "report") -> None:
    """Write ``generated`` between the markers ``<!-- NAME:begin/end -->`` of ``path``.

    The rest of the file is kept. A missing file is created with ``heading`` and the markers; a
    file without them gets them appended.
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{generated.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else f"# {heading}\n\n{begin}\n{end}\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    write_bytes_atomic(path, text.encode())
