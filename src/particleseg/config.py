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


def register_resolvers() -> None:
    """Register ``if_null`` and ``null_switch`` (safe to call more than once)."""
    for name, fn in (("if_null", if_null), ("null_switch", null_switch)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


register_resolvers()
