"""OmegaConf resolvers the configs use; importing this module registers them (idempotent)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

# The Hydra configs, inside the package so that an installed particleseg has them.
CONF_DIR = Path(__file__).resolve().parent / "conf"


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/particleseg``, else ``~/.cache/particleseg``.

    What particleseg makes once and keeps: the bundled sample, OpenVINO's converted models.
    """
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "particleseg"


def compose_config(name: str, overrides: list[str] | None = None) -> Any:
    """The root config ``conf/NAME.yaml`` with ``overrides``, as its command composes it.

    Works inside a running Hydra application (the report composes predict's config) and
    outside one (the napari widget, tests). Without a Hydra run, ``${hydra:...}`` values cannot
    resolve: give ``paths.root`` (and ``paths.output_dir`` where a config uses it).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(config_name=name, overrides=list(overrides or []))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides or []))


def if_null(value: Any, default: Any) -> Any:
    """``${if_null:${a},b}``: ``a`` unless it is null, else ``b``."""
    return default if value is None else value


def null_switch(value: Any, when_null: Any, otherwise: Any) -> Any:
    """``${null_switch:${a},x,y}``: ``x`` if ``a`` is null, else ``y``."""
    return when_null if value is None else otherwise


def path_stem(value: Any, default: str = "unnamed") -> str:
    """``${path_stem:${input}}``: a path's last part without suffixes (a.ome.tif -> a).

    ``${path_stem:${input},sample}`` gives ``sample`` when ``input`` is null.
    """
    if value is None:
        return default
    name = str(value).rstrip("/\\").replace("\\", "/").split("/")[-1]
    return name.split(".")[0] or name


def path_key(value: Any, default: str = "unnamed") -> str:
    """``${path_key:${input},sample}``: the path's stem and a hash of its absolute path.

    A folder name for the path's result that two inputs with the same stem do not share
    (``/a/scan.tif`` -> ``scan-1f0e3a2b``, ``/b/scan.tif`` -> ``scan-9c41d7e0``); ``default``
    when ``value`` is null. Relative paths are taken from the current folder.
    """
    if value is None:
        return default
    digest = hashlib.sha1(os.path.abspath(str(value)).encode()).hexdigest()[:8]
    return f"{path_stem(value, default)}-{digest}"


def register_resolvers() -> None:
    """Register ``if_null``, ``null_switch``, ``path_stem`` and ``path_key`` (idempotent)."""
    resolvers = (
        ("if_null", if_null),
        ("null_switch", null_switch),
        ("path_stem", path_stem),
        ("path_key", path_key),
    )
    for name, fn in resolvers:
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


register_resolvers()
