"""One validation library for run configs, component parameters and HTTP request bodies: pydantic, strict.

Every config model and every scorer subclasses `Params`. Unknown keys, values
of the wrong type (a string where a number is due; YAML's `yes` where a bool
is) and values out of range are refused before any work starts. Cross-field
rules go in `check()`, which raises ConfigError itself. `parse` turns
pydantic's errors into one line in one shape ("The 'k' parameter of search
must be ... Got ... instead."), the line the CLI prints after `tamis: error:`.
"""

import contextvars
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from tamis.errors import ConfigError

P = TypeVar("P", bound="Params")
_VALIDATING = contextvars.ContextVar("tamis_validating", default=False)


class Params(BaseModel):
    """A validated parameter set; `__init__` only stores, as in scikit-learn, and `check` relates fields."""

    model_config = ConfigDict(extra="forbid", strict=True)

    def __init__(self, **values: Any):
        if _VALIDATING.get():  # a nested model: the outermost one reports the error with its full location
            super().__init__(**values)
            return
        token = _VALIDATING.set(True)
        try:
            super().__init__(**values)
        except ValidationError as e:
            raise _config_error(e, type(self), _owner(type(self))) from None
        finally:
            _VALIDATING.reset(token)

    @model_validator(mode="after")
    def _run_check(self):
        self.check()
        return self

    def check(self) -> None:
        """Rules across fields; raise ConfigError naming the parameter, what is allowed and what was given."""

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def _owner(cls: type) -> str:
    """A component's registered name (a class attribute), else the class name."""
    name = getattr(cls, "name", None)
    return name if isinstance(name, str) else cls.__name__


def _where(loc: tuple, owner: str) -> tuple[str, str]:
    """(owner of the failing field, the field) from pydantic's location tuple."""
    path = [str(p) for p in loc if not str(p).startswith("function-")]
    fields = [p for p in path if not p.isdigit()]
    if not fields:
        return owner, ""
    parent = owner
    for p in path[:-1]:
        parent = f"{parent}[{p}]" if p.isdigit() else f"{parent}.{p}"
    return parent, path[-1]


def message(err: ValidationError, owner: str) -> tuple[str, str]:
    """One line and a hint for the first error of a pydantic ValidationError."""
    e = err.errors(include_url=False)[0]
    parent, name = _where(e["loc"], owner)
    kind = e["type"]
    if kind == "missing":
        return f"{parent} is missing its required parameter {name!r}.", ""
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"{parent} has no parameter {name!r}.", ""
    what = e["msg"]
    what = "must be" + what[len("Input should be"):] if what.startswith("Input should be") else what
    subject = f"The {name!r} parameter of {parent}" if name else parent
    return f"{subject} {what}. Got {e.get('input')!r} instead.", ""


def parse(cls: type[P], values: Any, owner: str | None = None) -> P:
    """Build `cls` from a mapping (YAML, JSON, keyword flags); every failure is one ConfigError line."""
    owner = owner or _owner(cls)
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{owner} must be a mapping of parameters. Got {values!r} instead.")
    token = _VALIDATING.set(True)
    try:
        return cls.model_validate(values)
    except ValidationError as e:
        raise _config_error(e, cls, owner) from None
    finally:
        _VALIDATING.reset(token)


def _config_error(err: ValidationError, cls: type[BaseModel], owner: str) -> ConfigError:
    line, hint = message(err, owner)
    if "has no parameter" in line:
        hint = f"known parameters: {', '.join(sorted(_fields_at(cls, err)))}"
    return ConfigError(line, hint=hint)


def _fields_at(cls: type[BaseModel], err: ValidationError) -> list[str]:
    """The field names of the model that refused an unknown key, for the hint."""
    model: Any = cls
    for p in err.errors()[0]["loc"][:-1]:
        if isinstance(p, int) or not hasattr(model, "model_fields"):
            continue
        field = model.model_fields.get(p)
        if field is None:
            break
        ann = field.annotation
        for arg in (ann, *getattr(ann, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                model = arg
                break
    return list(getattr(model, "model_fields", {}))
