import json

from particleseg.evaluation.ablation import COLUMNS, ablation_rows, main
from particleseg.evaluation.tables import BEGIN, END


def _summary(folder, f1, baseline_f1):
    folder.mkdir(parents=True)
    means = {k: f1 for k in COLUMNS}
    doc = {
        "summary": {
            "model": {"id_test": {"mean": means}, "all": {"mean": means}},
            "SNOW": {"id_test": {"mean": {k: baseline_f1 for k in COLUMNS}}},
        }
    }
    (folder / "summary.json").write_text(json.dumps(doc))


def test_rows_per_model_and_test_set_and_the_baselines_once(tmp_path):
    _summary(tmp_path / "a", 0.5, 0.3)
    _summary(tmp_path / "b", 0.7, 0.3)
    header, rows, kept = ablation_rows(
        [("recipe", tmp_path / "a"), ("+ norm", tmp_path / "b"), ("+ wide", tmp_path / "c")]
    )
    assert header[:3] == ["row", "test set", "method"]
    assert rows[0][:4] == ["recipe", "id_test", "model", 0.5]
    assert rows[1][:4] == ["+ norm", "id_test", "model", 0.7]
    assert rows[2][:3] == ["+ wide", "", "not run yet"]
    assert rows[3][:4] == ["baseline (tuned on train)", "id_test", "SNOW", 0.3]
    assert len(rows) == 4  # "all" is not a test set; the baseline is listed once
    assert kept == []


def test_the_table_goes_between_its_own_markers(tmp_path):
    _summary(tmp_path / "a", 0.5, 0.3)
    page = tmp_path / "results.md"
    ablation = "<!-- ablation:begin -->\nold\n<!-- ablation:end -->"
    page.write_text(f"# R\n\n{BEGIN}\nreport\n{END}\n\n## Ablation\n{ablation}\nhand\n")
    main([str(page), f"recipe={tmp_path / 'a'}"])
    text = page.read_text()
    assert "report" in text and "old" not in text and text.endswith("hand\n")
    assert "| recipe | id_test | model |" in text


def test_keep_missing_keeps_a_rows_cells_from_the_page_and_says_so(tmp_path):
    _summary(tmp_path / "b", 0.7, 0.3)
    page = tmp_path / "results.md"
    old = (
        "<!-- ablation:begin -->\n| row | test set | method | "
        + " | ".join(COLUMNS)
        + " |\n|---|\n| recipe | id_test | model | 0.1 | 0.2 | 0.3 | 0.4 | 0.5 |\n"
        "| baseline (tuned on train) | hard_test | SNOW | 0.2 | 0.2 | 0.2 | 0.2 | 0.2 |\n"
        "| baseline (tuned on train) | id_test | SNOW | 0.9 | 0.9 | 0.9 | 0.9 | 0.9 |\n"
        "| + wide |  | not run yet |  |  |  |  |  |\n<!-- ablation:end -->"
    )
    page.write_text(f"# R\n{old}\n")
    main([str(page), "--keep-missing", f"recipe={tmp_path / 'a.json'}", f"+ norm={tmp_path / 'b'}"])
    text = page.read_text()
    assert "| recipe | id_test | model | 0.1 | 0.2 | 0.3 | 0.4 | 0.5 |" in text
    assert "| + norm | id_test | model | 0.700 |" in text
    assert "Kept from the previous version of this table" in text
    assert "): recipe; baseline (tuned on train) SNOW on hard_test._" in text
    assert "| baseline (tuned on train) | hard_test | SNOW | 0.2 |" in text  # no summary has it
    assert "| baseline (tuned on train) | id_test | SNOW | 0.300 |" in text  # b's summary has it
    main([str(page), f"recipe={tmp_path / 'a.json'}", f"+ norm={tmp_path / 'b' / 'summary.json'}"])
    assert "| recipe |  | not run yet |" in page.read_text()  # without the flag: not kept


def test_the_note_says_which_rows_were_scored_on_which_scans(tmp_path):
    means = {k: 0.5 for k in COLUMNS}

    def summary(name, n_ref, digest=None):
        test = {"mean": means, "total": {"n_ref": n_ref}}
        doc = {"summary": {"model": {"hard_test": test}, "SNOW": {"hard_test": test}}}
        if digest:
            doc["scans"] = {"hard_test": {"sha256": digest, "samples": {}}}
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
        return f"{name}={tmp_path / f'{name}.json'}"

    page = tmp_path / "results.md"
    page.write_text("<!-- ablation:begin -->\n<!-- ablation:end -->\n")
    main([str(page), summary("one", 1919), summary("two", 1919)])
    assert "- hard_test: 1919 reference particles, scans not recorded (every row)" in (
        page.read_text()
    )
    main([str(page), summary("one", 1919), summary("two", 1927, "ab" * 32), summary("three", 1919)])
    line = next(ln for ln in page.read_text().splitlines() if ln.startswith("- hard_test"))
    assert line == (
        "- hard_test: **not one set of recorded scans**: 1919 reference particles, scans not "
        "recorded (one, three, the baselines); 1927 reference particles, "
        f"scans {'ab' * 6} (two)"
    )
