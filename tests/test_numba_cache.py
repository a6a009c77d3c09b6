"""particleseg.numba_cache: compiled kernels are kept when the package folder is read-only."""

import os
import subprocess
import sys
import textwrap

import pytest

from particleseg import numba_cache
from particleseg.numba_cache import ensure_numba_cache_dir, numba_cache_dir


@pytest.fixture
def read_only_package(tmp_path, monkeypatch):
    """A package folder that ``os.access`` calls unwritable (root can write anywhere)."""
    package = tmp_path / "site-packages" / "particleseg"
    package.mkdir(parents=True)
    real_access = os.access
    monkeypatch.setattr(
        numba_cache.os,
        "access",
        lambda path, mode: False if str(path) == str(package) else real_access(path, mode),
    )
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return package


def test_a_writable_package_keeps_numbas_default(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert numba_cache_dir(tmp_path) is None


def test_a_read_only_package_caches_in_the_user_cache(read_only_package, tmp_path):
    assert numba_cache_dir(read_only_package) == tmp_path / "cache" / "particleseg" / "numba"


def test_the_users_own_setting_wins(read_only_package, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere/else")
    assert numba_cache_dir(read_only_package) is None
    assert ensure_numba_cache_dir(read_only_package) is None
    assert os.environ["NUMBA_CACHE_DIR"] == "/somewhere/else"


def test_an_unwritable_user_cache_falls_back_to_the_temporary_directory(
    read_only_package, tmp_path, monkeypatch
):
    (tmp_path / "not_a_folder").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not_a_folder"))
    monkeypatch.setattr(numba_cache.tempfile, "tempdir", str(tmp_path / "tmp"))
    folder = numba_cache_dir(read_only_package)
    assert folder.parent == tmp_path / "tmp" and folder.name.startswith("particleseg-numba")
    assert folder.is_dir()


def test_a_kernel_compiled_after_the_switch_is_cached_in_the_user_cache(tmp_path):
    """End to end in a fresh process, numba imported before particleseg: the cache files land
    in the user cache, and a second process loads them instead of compiling."""
    (tmp_path / "kernel_module.py").write_text(
        "import numba\n\n@numba.njit(cache=True)\ndef plus_one(x):\n    return x + 1\n"
    )
    script = textwrap.dedent(
        """
        import os, sys
        import numba  # already loaded: its config must follow too
        from particleseg import numba_cache
        real, package = os.access, str(numba_cache.PACKAGE_DIR)
        numba_cache.os.access = lambda p, m: False if str(p) == package else real(p, m)
        numba_cache.ensure_numba_cache_dir()
        sys.path.insert(0, sys.argv[1])
        import kernel_module
        assert kernel_module.plus_one(1) == 2
        print(sum(kernel_module.plus_one.stats.cache_hits.values()))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    runs = [
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        for _ in range(2)
    ]
    cached = list((tmp_path / "cache" / "particleseg" / "numba").rglob("*.nbi"))
    assert cached, runs[0].stderr
    assert not (tmp_path / "__pycache__").exists() or not list(
        (tmp_path / "__pycache__").glob("*.nbi")
    )
    hits = [int(run.stdout.split()[-1]) for run in runs]
    assert hits == [0, 1]  # compiled once, then loaded from the user cache
