"""The ``particleseg`` command, and particleseg installed from its wheel, outside the checkout."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from particleseg.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    printed = capsys.readouterr().out
    for name in ("predict", "train", "evaluate", "report", "synth", "annotate", "export"):
        assert f"  {name} " in printed
    assert set(COMMANDS) == {
        "predict",
        "train",
        "evaluate",
        "report",
        "synth",
        "annotate",
        "export",
    }


def test_an_unknown_command_is_refused_with_status_2(capsys):
    assert main(["segment"]) == 2
    assert "unknown command 'segment'" in capsys.readouterr().err


def test_the_wheel_installs_and_predicts_outside_the_checkout(tmp_path):
    """Build the wheel from a copy of the sources, install it into a new virtual environment
    and run ``particleseg predict`` there, from a folder outside the checkout.

    The new environment reuses this one's dependencies (a path in a .pth file) instead of
    downloading them again; particleseg itself, its configs and the shipped model come from
    the wheel alone (checked: the package imported is the installed one).
    """
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(wheels)]
    subprocess.run(build, check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("particleseg-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(install, check=True)

    work = tmp_path / "elsewhere"
    (work / "scans").mkdir(parents=True)
    rng = np.random.default_rng(0)
    metadata = {}
    for i, name in enumerate(("a", "b", "c")):  # a folder of 3 small scans, one metadata.json
        scan = np.full((24, 28 + 2 * i, 28), 1000, np.uint16)
        scan[6:16, 8:20, 8:20] = 3000
        np.save(work / "scans" / f"{name}.npy", scan + rng.integers(0, 50, scan.shape, np.uint16))
        metadata[name] = {"spacing": [0.5, 0.5, 0.5], "unit": "um", "particle_size_px": 10}
    (work / "scans" / "metadata.json").write_text(json.dumps(metadata))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def installed(code: str) -> str:
        done = subprocess.run(
            [str(python), "-c", code], check=True, capture_output=True, text=True, cwd=work, env=env
        )
        return done.stdout.strip()

    where = installed("import particleseg; print(particleseg.__file__)")
    assert Path(where).is_relative_to(venv), where
    # napari finds the plugin through the wheel's entry point and its packaged manifest
    manifest = installed(
        "from importlib.metadata import entry_points; "
        "(e,) = entry_points(group='napari.manifest', name='particleseg'); "
        "from importlib.resources import files; "
        "print(files(e.value.split(':')[0]) / e.value.split(':')[1])"
    )
    assert Path(manifest).is_file() and Path(manifest).is_relative_to(venv), manifest
    command = [str(bin_dir / "particleseg"), "predict", "-i", "scans", "-o", "out"]
    command += ["outputs.analysis=false", "outputs.overlay=false"]
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("a", "b", "c"):
        summary = json.loads((work / "out" / name / "summary.json").read_text())
        assert summary["model"]["path"].endswith("default.ckpt")
        assert Path(summary["model"]["path"]).is_relative_to(venv)
        assert summary["spacing"] == [0.5, 0.5, 0.5]
        assert (work / "out" / name / "instances.ome.zarr" / ".zattrs").is_file()
    # engine=auto: OpenVINO on this CPU, its converted model in the (test's) cache
    assert summary["windows"]["engine"]["engine"] == "openvino"
    assert list((Path(os.environ["XDG_CACHE_HOME"]) / "particleseg" / "openvino").glob("*.xml"))
    bad = subprocess.run(
        [*command[:2], "input=missing.tif"], cwd=work, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "missing.tif" in bad.stderr and "Traceback" not in bad.stderr


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
