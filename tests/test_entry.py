"""The entry points' shared error path and console hygiene (particleseg.entry)."""

from __future__ import annotations

import warnings

import pytest

from particleseg.entry import (
    guarded,
    hydra_value,
    quiet_third_party,
    rename_model_override,
    take_debug_flag,
    take_option_flags,
)


def test_deprecations_of_libraries_are_hidden_but_ours_show():
    with warnings.catch_warnings(record=True) as seen:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        quiet_third_party()
        for module in ("lightning.pytorch.trainer", "torch.nn", "particleseg.inference"):
            warnings.warn_explicit("old", DeprecationWarning, "f.py", 1, module=module)
        warnings.warn_explicit("not a deprecation", UserWarning, "f.py", 1, module="torch.nn")
    shown = [(str(w.message), w.category) for w in seen]
    assert shown == [("old", DeprecationWarning), ("not a deprecation", UserWarning)]


def test_guarded_turns_value_and_os_errors_into_a_message_and_status_2(capsys):
    take_debug_flag([])
    calls = []

    def bad():
        raise FileNotFoundError(2, "No such file or directory", "/x/scan.tif")

    with pytest.raises(SystemExit) as stop:
        guarded("predict.py", bad, on_error=lambda: calls.append(1))
    assert stop.value.code == 2 and calls == [1]
    err = capsys.readouterr().err
    assert err.startswith("predict.py: ") and "/x/scan.tif" in err and "No such file" in err
    with pytest.raises(SystemExit):
        guarded("predict.py", lambda: (_ for _ in ()).throw(ValueError("scan.tif: constant")))
    assert capsys.readouterr().err == "predict.py: scan.tif: constant\n"
    assert guarded("predict.py", lambda: 7) == 7


def test_debug_flag_is_taken_out_and_lets_the_exception_through():
    argv = ["predict.py", "--debug", "input=x"]
    assert take_debug_flag(argv) and argv == ["predict.py", "input=x"]
    with pytest.raises(ValueError):
        guarded("predict.py", lambda: (_ for _ in ()).throw(ValueError("x")))
    take_debug_flag([])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-i", "scans/", "-o", "out"], ["input=scans/", "output=out"]),
        (
            ["--input=a b.tif", "--model", "m.ckpt", "x=1"],
            ["input=a b.tif", "checkpoint=m.ckpt", "x=1"],
        ),
        (["-i", "a,b[1].tif", "-m=x.ckpt"], ["input='a,b[1].tif'", "checkpoint=x.ckpt"]),
        (["input=s.tif", "--dry-run"], ["input=s.tif", "--dry-run"]),
    ],
)
def test_short_options_become_overrides(args, expected):
    argv = ["particleseg predict", *args]
    take_option_flags(argv)
    assert argv == ["particleseg predict", *expected]


@pytest.mark.parametrize("args", [["-i"], ["-o", "--debug"]])
def test_a_short_option_without_its_value_stops_with_status_2(args, capsys):
    with pytest.raises(SystemExit) as stop:
        take_option_flags(["particleseg predict", *args])
    assert stop.value.code == 2
    assert "needs a value" in capsys.readouterr().err


@pytest.mark.parametrize(
    "path",
    ["a b.tif", "a,b.tif", "x/${y}.tif", "scan[1].tif", "it's.tif", "C:\\data\\", "a=b", "{x}(1)"],
)
def test_a_quoted_value_is_parsed_back_to_the_same_path(path):
    """Through Hydra's own override parser and OmegaConf's resolution, as predict reads it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    value = OverridesParser.create().parse_override(f"input={hydra_value(path)}").value()
    assert OmegaConf.create({"input": value}).input == path


def test_model_is_still_taken_for_checkpoint():
    got = rename_model_override(["model=a.ckpt", "input=x", "model.net.n_stages=5"])
    assert got == ["checkpoint=a.ckpt", "input=x", "model.net.n_stages=5"]
