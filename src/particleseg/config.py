"""OmegaConf resolvers the configs use; importing this module registers them (idempotent)."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf


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


def register_resolvers() -> None:
    """Register ``if_null``, ``null_switch`` and ``path_stem`` (safe to call more than once)."""
    for name, fn in (("if_null", if_null), ("null_switch", null_switch), ("path_stem", path_stem)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


register_resolvers()
