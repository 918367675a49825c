"""Scorers and filters by name, built from config with validated parameters.

Every module in `tamis.filters` that defines a component decorates it with
`@register`; `build` imports them all once, so adding a component is adding a module.
"""

import importlib
import pkgutil
from typing import Any

from tamis.errors import ConfigError
from tamis.filters.base import Scorer
from tamis.validation import Params, parse

_REGISTRY: dict[str, type[Scorer]] = {}
_LOADED = False


class FilterSpec(Params):
    """One entry of a config's filter chain: a registered component's name and its parameters."""

    name: str
    params: dict[str, Any] = {}


def register(cls: type[Scorer]) -> type[Scorer]:
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"two components are named {cls.name!r}")
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    import tamis.filters as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"tamis.filters.{mod.name}")
    _LOADED = True


def available() -> dict[str, type[Scorer]]:
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def build(name: str, params: dict[str, Any] | None = None) -> Scorer:
    components = available()
    if name not in components:
        raise ConfigError(f"Unknown scorer or filter {name!r}.", hint=f"available: {', '.join(components)}")
    return parse(components[name], params, owner=name)
