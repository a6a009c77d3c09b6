"""The notebooks run top to bottom (executed with nbclient in a temporary folder)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from particleseg.inference.model import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parents[1]


def run_notebook(name: str, cwd: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    return nb


def test_quickstart_predicts_scores_and_plots(tmp_path):
    assert DEFAULT_MODEL.exists(), "the shipped model is part of the repository"
    nb = run_notebook("quickstart.ipynb", tmp_path)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # slices and the size distribution
    text = "".join(
        str(o.get("data", {}).get("text/plain", "")) + o.get("text", "") for o in outputs
    )
    assert "f1_instance" in text and "D50_volume" in text
    assert list((tmp_path / "outputs" / "quickstart" / "pred").glob("*/particles.csv"))


@pytest.mark.slow  # 23 s; the quickstart notebook runs in the default suite
def test_particle_analysis_loads_filters_and_plots(tmp_path):
    nb = run_notebook("particle_analysis.ipynb", tmp_path)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) == 2
    text = "".join(
        str(o.get("data", {}).get("text/plain", "")) + o.get("text", "") for o in outputs
    )
    assert "particles;" in text and "kept" in text and "D50_volume" in text
