"""run_blocks and StageBar: one bar counts every block of a stage's passes, on every scheduler."""

from __future__ import annotations

import io

import pytest

from particleseg.postprocess import StageBar
from particleseg.postprocess._blocks import run_blocks


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_one_stage_bar_counts_all_passes(scheduler):
    out = io.StringIO()
    with StageBar("instances", file=out) as bar:
        a = run_blocks(
            lambda i: i * i, range(5), "label", scheduler=scheduler, num_workers=2, progress=bar
        )
        b = run_blocks(
            lambda i: -i, range(3), "assign", scheduler=scheduler, num_workers=2, progress=bar
        )
        assert (bar.bar.n, bar.bar.total) == (8, 8)
    assert a == [0, 1, 4, 9, 16] and b == [0, -1, -2]
    text = out.getvalue()
    assert "instances: label" in text and "instances: assign" in text and "8/8" in text


def test_without_progress_nothing_is_printed(capsys):
    assert run_blocks(
        str, [1, 2], "x", scheduler="synchronous", num_workers=None, progress=False
    ) == ["1", "2"]
    assert run_blocks(str, [], "x", scheduler="threads", num_workers=None, progress=True) == []
    assert capsys.readouterr().out == ""
