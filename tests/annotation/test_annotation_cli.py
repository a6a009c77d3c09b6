import subprocess
import sys

import numpy as np
import pytest
from annotation_helpers import random_balls, stripe_scribbles, touching_pair, two_phase

from particleseg.annotation.cli import main
from particleseg.io import SampleMetadata, load_dataset, read_volume, write_metadata, write_volume


@pytest.fixture
def scan(tmp_path):
    labels = random_balls((24, 40, 40), 6, (3, 6), seed=4)
    image = (two_phase(labels, noise=0.2, seed=4) * 1000 + 3000).astype(np.uint16)
    scribbles = stripe_scribbles(labels > 0, slices=[6, 12, 18], every=3, erode=1)
    write_volume(tmp_path / "scan.tif", image, spacing=(0.02, 0.02, 0.02))
    write_metadata(tmp_path / "scan.tif", SampleMetadata((0.02, 0.02, 0.02), "mm", 0.2))
    write_volume(tmp_path / "scribbles.tif", scribbles)
    return tmp_path, labels


def test_segment_writes_a_dataset_sample(scan, capsys):
    tmp, labels = scan
    out = tmp / "ds"
    status = main(
        [
            "segment",
            str(tmp / "scan.tif"),
            str(tmp / "scribbles.tif"),
            str(out),
            "--sigmas",
            "1",
            "2",
            "--n-estimators",
            "10",
            "--semantic-out",
            str(tmp / "semantic.tif"),
        ]
    )
    assert status == 0
    assert "particles" in capsys.readouterr().out
    entry = load_dataset(out).sample("scan")
    assert entry.metadata.particle_size == 0.2 and entry.metadata.spacing == (0.02,) * 3
    predicted = np.asarray(read_volume(entry.label))
    overlap = ((predicted > 0) & (labels > 0)).sum() / (labels > 0).sum()
    assert overlap > 0.85
    assert predicted.max() >= int(labels.max()) - 1
    assert set(np.unique(np.asarray(read_volume(tmp / "semantic.tif")))) <= {1, 2}


def test_segment_metadata_from_flags(scan):
    tmp, _ = scan
    (tmp / "scan.meta.json").unlink()
    args = [
        "segment",
        str(tmp / "scan.tif"),
        str(tmp / "scribbles.tif"),
        str(tmp / "ds"),
        "--sigmas",
        "1",
        "--n-estimators",
        "5",
        "--name",
        "x",
    ]
    assert main(args) == 2  # no particle size anywhere
    assert main([*args, "--estimate-particle-size", "--unit", "um"]) == 0
    meta = load_dataset(tmp / "ds").sample("x").metadata
    assert meta.spacing == (0.02,) * 3 and meta.unit == "um" and meta.particle_size_px > 3


def test_split_command(tmp_path, capsys):
    labels, truth_a, truth_b, ca, cb, contact = touching_pair(r=10, gap=1.6)
    write_volume(tmp_path / "labels.tif", labels)
    pt = ",".join
    status = main(
        [
            "split",
            str(tmp_path / "labels.tif"),
            str(tmp_path / "fixed.tif"),
            "--id",
            "1",
            "--markers",
            pt(map(str, ca)),
            pt(map(str, cb)),
            "--border",
            f"{ca[0]},{ca[1] - 10},{contact}",
            f"{ca[0]},{ca[1] + 10},{contact}",
        ]
    )
    assert status == 0
    assert "split into ids [1, 3]" in capsys.readouterr().out
    out = np.asarray(read_volume(tmp_path / "fixed.tif"))
    assert ((out == 3) & truth_b).sum() / truth_b.sum() > 0.9
    status = main(
        [
            "split",
            str(tmp_path / "labels.tif"),
            str(tmp_path / "plane.npy"),
            "--id",
            "1",
            "--markers",
            pt(map(str, ca)),
            pt(map(str, cb)),
            "--plane",
            f"{ca[0]},{ca[1]},{contact}",
            "0,0,1",
        ]
    )
    assert status == 0 and np.load(tmp_path / "plane.npy").max() == 3


def test_errors_name_the_file_and_exit_2(tmp_path, capsys):
    missing = tmp_path / "nope.tif"
    assert (
        main(
            [
                "split",
                str(missing),
                str(tmp_path / "o.tif"),
                "--id",
                "1",
                "--markers",
                "1,1,1",
                "2,2,2",
                "--border",
                "1,1,1",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert str(missing) in err and "not found" in err
    labels = np.zeros((8, 8, 8), np.uint32)
    labels[2:6, 2:6, 2:6] = 1
    write_volume(tmp_path / "l.tif", labels)
    assert (
        main(
            [
                "split",
                str(tmp_path / "l.tif"),
                str(tmp_path / "o.tif"),
                "--id",
                "4",
                "--markers",
                "3,3,3",
                "4,4,4",
                "--border",
                "3,3,4",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "l.tif" in err and "absent" in err
    assert not (tmp_path / "o.tif").exists()
    with pytest.raises(SystemExit) as exc:
        main(["split", str(tmp_path / "l.tif"), "o.tif", "--id", "1", "--markers", "3,3"])
    assert exc.value.code == 2


def test_module_entry_point_missing_file(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "particleseg.annotation",
            "segment",
            str(tmp_path / "a.tif"),
            str(tmp_path / "b.tif"),
            str(tmp_path / "ds"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "a.tif" in proc.stderr and "not found" in proc.stderr


def test_gui_command_opens_the_tools(tmp_path, monkeypatch):
    import particleseg.annotation.widgets as widgets

    calls = []

    class FakeNapari:
        @staticmethod
        def run():
            calls.append("run")

    monkeypatch.setattr(widgets, "launch", lambda *a, **k: calls.append(("launch", a)))
    monkeypatch.setattr(widgets, "_napari", lambda: FakeNapari)
    image = tmp_path / "scan.tif"
    assert main(["gui", str(image), "--labels", str(tmp_path / "l.tif")]) == 0
    assert calls == [("launch", (image, tmp_path / "l.tif", None)), "run"]
