"""Scorers and filters by name, built from config with validated parameters.

Every module in `tamis.filters` that defines a component decorates it with
`@register`; `build` imports them all once, so adding a component is adding a module.
"""

import dataclasses
import importlib
import pkgutil
import types
import typing
from typing import Any

from tamis.errors import ConfigError
from tamis.filters.base import Scorer

_REGISTRY: dict[str, type[Scorer]] = {}
_LOADED = False


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


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def check_value(owner: str, field: str, tp: Any, value: Any) -> Any:
    """Check `value` against a type hint; raise ConfigError in one message shape. Ints pass as floats."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            try:
                return check_value(owner, field, arg, value)
            except ConfigError:
                continue
    elif tp is Any:
        return value
    elif tp is type(None):
        if value is None:
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int or tp is str or tp is bool:
        if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
            return value
    elif origin in (list, tuple):
        if isinstance(value, (list, tuple)):
            return [check_value(owner, f"{field}[{i}]", args[0], v) for i, v in enumerate(value)] if args else list(value)
    elif origin is dict:
        if isinstance(value, dict):
            return {k: check_value(owner, f"{field}.{k}", args[1], v) for k, v in value.items()} if args else value
    elif origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(
            f"The {field!r} parameter of {owner} must be one of {list(args)}. Got {value!r} instead."
        )
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, dict):
            return from_dict(tp, value, owner=f"{owner}.{field}")
    raise ConfigError(f"The {field!r} parameter of {owner} must be {_type_name(tp)}. Got {value!r} instead.")


def from_dict(cls: type, values: dict[str, Any] | None, owner: str | None = None) -> Any:
    """Build dataclass `cls` from a dict, refusing unknown keys and wrongly typed values."""
    owner = owner or getattr(cls, "name", cls.__name__)
    values = values or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{owner} must be a mapping of parameters. Got {values!r} instead.")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(
            f"{owner} has no parameter {unknown[0]!r}.", hint=f"known parameters: {', '.join(sorted(fields))}"
        )
    kwargs = {k: check_value(owner, k, hints[k], v) for k, v in values.items()}
    try:
        obj = cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{owner}: {e}") from e
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def build(name: str, params: dict[str, Any] | None = None) -> Scorer:
    components = available()
    if name not in components:
        raise ConfigError(f"Unknown scorer or filter {name!r}.", hint=f"available: {', '.join(components)}")
    return from_dict(components[name], params, owner=name)
