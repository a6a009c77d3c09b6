"""The ablation table of docs/results.md: each row a model scored by the report on every test set.

Each row is a report run with ``results_md=null`` (``python evaluate.py --config-name report
checkpoint=MODEL output_dir=outputs/report/ROW results_md=null``); this module reads their
``summary.json`` files and writes one table between the ``ablation`` markers of the page::

    python -m particleseg.evaluation.ablation docs/results.md "today's recipe=outputs/report/A" ...

Each LABEL=PATH names a report folder (its ``summary.json``) or a copy of that file: the copies
in ``docs/results/ablation/`` keep the table reproducible after ``outputs/`` is gone
(``benchmarks/ablation_row.sh`` writes them). Rows whose summary is missing are listed as not run
yet, so the table says what is measured.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = ("f1_instance", "f1_match", "merger_ratio", "splitter_ratio", "pq")
MARKER = "ablation"  # <!-- ablation:begin --> ... <!-- ablation:end --> in the page


BASELINE_ROW = "baseline (tuned on train)"
BASELINE_SCANS = "the baselines"  # their label in the note on the test scans


def page_rows(page: Path) -> list[list[str]]:
    """The cells of the ablation table now on ``page`` (none if the page or table is missing)."""
    text = page.read_text() if page.is_file() else ""
    begin, end = f"<!-- {MARKER}:begin -->", f"<!-- {MARKER}:end -->"
    if begin not in text or end not in text:
        return []
    block = text.split(begin, 1)[1].split(end, 1)[0]
    lines = [ln.strip() for ln in block.splitlines() if ln.strip().startswith("|")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]


def scans_of(doc: dict) -> dict[str, str]:
    """Test set -> which scans a report summary was scored on, in words.

    The reference particle count always; the scans' digest (``summary.json``'s ``scans``,
    :func:`particleseg.evaluation.scans_digest`) where the report recorded one. Two rows with
    other words for a test set were scored on other scans (or on scans not recorded).
    """
    out = {}
    for test, s in doc["summary"].get("model", {}).items():
        if test == "all":
            continue
        digest = doc.get("scans", {}).get(test, {}).get("sha256")
        n_ref = s.get("total", {}).get("n_ref", "?")
        out[test] = f"{n_ref} reference particles, " + (
            f"scans {digest[:12]}" if digest else "scans not recorded"
        )
    return out


def scans_note(scans: dict[str, dict[str, str]]) -> str:
    """One line per test set: which rows were scored on which scans (see :func:`scans_of`)."""
    tests = sorted({test for by_test in scans.values() for test in by_test})
    lines = []
    for test in tests:
        groups: dict[str, list[str]] = {}
        # the model rows in their order, then the baselines (whose report gave them)
        for label, by_test in sorted(scans.items(), key=lambda kv: kv[0] == BASELINE_SCANS):
            if test in by_test:
                groups.setdefault(by_test[test], []).append(label)
        if len(groups) == 1:
            ((words, _),) = groups.items()
            lines.append(f"{test}: {words} (every row)")
        else:
            parts = [f"{words} ({', '.join(labels)})" for words, labels in groups.items()]
            lines.append(f"{test}: **not one set of recorded scans**: {'; '.join(parts)}")
    return "\n".join(f"- {line}" for line in lines)


def ablation_rows(
    rows: list[tuple[str, Path]],
    kept: list[list[str]] | None = None,
    scans: dict[str, dict[str, str]] | None = None,
) -> tuple[list[str], list[list], list[str]]:
    """Header and rows: per model row and test set, the model's means, then each baseline once.

    Args:
        rows: ``(label, report output folder or its summary.json copy)`` in the order to show.
        kept: the table's cells as the page has them (:func:`page_rows`): a row whose summary
            is missing keeps its cells from there, and so does a baseline's row (test set and
            method) that no summary gives.
        scans: filled, if given, with each summary's :func:`scans_of` under its label (the
            baselines' under ``BASELINE_SCANS``: the scans of the first report that has them).

    Returns:
        ``(header, table rows, labels kept from the page)``; a row whose ``summary.json`` is
        missing and not kept reads "not run yet".
    """
    header = ["row", "test set", "method", *COLUMNS]
    table, baselines, kept_labels = [], {}, []
    kept = [r for r in (kept or []) if len(r) == len(header) and r[2] != "not run yet"]
    for label, folder in rows:
        path = Path(folder) if Path(folder).suffix == ".json" else Path(folder) / "summary.json"
        if not path.is_file():
            old = [r for r in kept if r[0] == label]
            if old:
                table.extend(old)
                kept_labels.append(label)
            else:
                table.append([label, "", "not run yet", *[""] * len(COLUMNS)])
            continue
        doc = json.loads(path.read_text())
        found = scans_of(doc)
        if scans is not None:
            scans[label] = found
        for method, by_test in doc["summary"].items():
            for test, s in by_test.items():
                if test == "all":
                    continue
                values = [s["mean"][k] for k in COLUMNS]
                if method == "model":
                    table.append([label, test, "model", *values])
                elif (test, method) not in baselines:
                    baselines[test, method] = values
                    if scans is not None and test in found:
                        scans.setdefault(BASELINE_SCANS, {}).setdefault(test, found[test])
    old = {(r[1], r[2]): r[3:] for r in kept if r[0] == BASELINE_ROW}
    missing = {key: cells for key, cells in old.items() if key not in baselines}
    for test, method in missing:
        kept_labels.append(f"{BASELINE_ROW} {method} on {test}")
    for (test, method), values in sorted({**missing, **baselines}.items()):
        table.append([BASELINE_ROW, test, method, *values])
    return header, table, kept_labels


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m particleseg.evaluation.ablation PAGE LABEL=FOLDER ...``."""
    from particleseg.evaluation.tables import markdown_table, replace_between_markers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("rows", nargs="+", help="LABEL=REPORT_OUTPUT_FOLDER or LABEL=SUMMARY.json")
    parser.add_argument(
        "--keep-missing",
        action="store_true",
        help="a row whose summary is not here keeps its cells from the page (and says so)",
    )
    args = parser.parse_args(argv)
    rows = []
    for item in args.rows:
        label, sep, folder = item.partition("=")
        if not sep:
            parser.exit(2, f"ablation: {item!r} is not LABEL=FOLDER\n")
        rows.append((label, Path(folder)))
    scans: dict[str, dict[str, str]] = {}
    header, table, kept = ablation_rows(
        rows, page_rows(args.page) if args.keep_missing else None, scans
    )
    parts = [
        "_Generated by `python -m particleseg.evaluation.ablation`; do not edit by hand._\n",
        markdown_table(header, table),
    ]
    if scans:
        parts.append(f"\nTest scans each row was scored on:\n\n{scans_note(scans)}")
    if kept:
        parts.append(
            "\n_Kept from the previous version of this table (their summary files were not "
            f"there when it was regenerated): {'; '.join(kept)}._"
        )
    text = "\n".join(parts)
    replace_between_markers(args.page, text, "Results", name=MARKER)
    print(f"{args.page}: ablation table with {len(rows)} rows")


if __name__ == "__main__":
    main()
