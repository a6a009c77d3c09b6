"""Suite-wide fixtures."""

import pytest


@pytest.fixture(autouse=True)
def torch_engine_in_process(monkeypatch):
    """In-process tests run the network with torch: ``inference.engine=auto`` falls back to it.

    OpenVINO's runtime, once it has run a model in the test process, changes that process under
    later tests (a zarr fuzz test then crashed in a C decoder). Its tests and the programs run
    as subprocesses (the CLI and wheel tests) still use it, in their own processes.
    """
    from particleseg.inference import engines

    monkeypatch.setattr(engines, "openvino_available", lambda: False)


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """The tests' caches (OpenVINO's converted models) stay out of the user's ~/.cache."""
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old
