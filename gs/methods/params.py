"""Method parameters: their types and ranges (:class:`Param`), a schema built from a
method's config dataclass (:func:`param_schema`), and values read as YAML 1.2 scalars
(:func:`parse_scalar`), so that ``--set`` and config values are checked before anything runs."""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any


class ParamError(ValueError):
    """A method parameter that is unknown, of the wrong type or out of its range."""


# ------------------------------------------------------------------------------ YAML scalars
# YAML 1.2 core-schema numbers: PyYAML (YAML 1.1) reads "1e-4" (no dot) as a string
_FLOAT_RE = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_SPECIAL = {".nan": math.nan, "nan": math.nan, ".inf": math.inf, "+.inf": math.inf, "inf": math.inf,
            "-.inf": -math.inf, "-inf": -math.inf}


def parse_scalar(text: str) -> Any:
    """A ``--set`` or config value as a YAML 1.2 scalar: ``1e-4`` -> 0.0001, ``true`` -> True,
    ``null`` -> None, ``[1, 2]`` -> a list; anything else stays the string."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        return _number(value, value)
    return value


def _number(text: str, otherwise: Any) -> Any:
    s = text.strip()
    if _FLOAT_RE.match(s):
        return int(s) if re.fullmatch(r"[-+]?[0-9]+", s) else float(s)
    return _SPECIAL.get(s.lower(), otherwise)


# ------------------------------------------------------------------------------ parameters
_TYPES = ("int", "float", "bool", "str", "int_list")


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter: ``type`` (int | float | bool | str | int_list), inclusive ``min``/``max``
    for numbers, ``choices`` for strings, ``nullable`` when None is allowed (e.g. "rule off")."""

    type: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"Param type must be one of {_TYPES}, got {self.type!r}")

    def describe(self) -> str:
        out = self.type
        if self.choices:
            out += " in {" + ", ".join(map(str, self.choices)) + "}"
        if self.min is not None and self.max is not None:
            out += f" in [{self.min}, {self.max}]"
        elif self.min is not None:
            out += f" >= {self.min}"
        elif self.max is not None:
            out += f" <= {self.max}"
        return out + (" or null" if self.nullable else "")

    def check(self, value: Any) -> Any:
        """The value, coerced (a numeric string parsed as YAML 1.2, an integral float for an
        int); ValueError with the reason when it does not fit."""
        if isinstance(value, str) and self.type != "str":
            value = parse_scalar(value)
        if value is None:
            if self.nullable:
                return None
            raise ValueError("must not be null")
        if self.type == "int_list":
            if not isinstance(value, (list, tuple)):
                raise ValueError("expects a list of integers")
            return [_INT.check(v) for v in value]
        if self.type == "bool":
            if not isinstance(value, bool):
                raise ValueError("expects true or false")
            return value
        if self.type == "str":
            if not isinstance(value, str):
                raise ValueError("expects a string")
            if self.choices and value not in self.choices:
                raise ValueError(f"expects one of {list(self.choices)}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expects {'an integer' if self.type == 'int' else 'a number'}")
        if not math.isfinite(value):
            raise ValueError("must be finite")
        if self.type == "int":
            if value != int(value):
                raise ValueError("expects an integer")
            value = int(value)
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise ValueError(f"out of range (expects {self.describe()})")
        return value


_INT = Param("int")


def _param_of(hint: Any) -> Param:
    """A Param from a type annotation: int, float, bool, str, X | None, tuple[int, ...]."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return dataclasses.replace(_param_of(rest[0]), nullable=True)
    if origin in (tuple, list) and args and args[0] is int:
        return Param("int_list")
    for t in (bool, int, float, str):  # bool before int
        if hint is t:
            return Param(t.__name__)
    raise TypeError(f"no parameter type for annotation {hint!r}; declare it with Param(...)")


def param_schema(*sources: Any, **overrides: Any) -> dict[str, Param]:
    """Parameter schema from config dataclasses, functions (their annotated fields or keyword
    arguments) or schemas built before (first source wins for a name), then ``overrides``: a :class:`Param`, a
    ``(min, max)`` tuple (None = open end) or a list of string choices per name."""
    out: dict[str, Param] = {}
    defaults: dict[str, Any] = {}
    for src in sources:
        if isinstance(src, Mapping):  # a schema built before
            for name, param in src.items():
                out.setdefault(name, param)
            continue
        if dataclasses.is_dataclass(src):
            hints = typing.get_type_hints(src)
            found = {f.name: f.default for f in dataclasses.fields(src)}
        else:
            hints = typing.get_type_hints(src)
            found = {p.name: p.default for p in inspect.signature(src).parameters.values()
                     if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"}
        for name, default in found.items():
            if name not in out:
                out[name] = _param_of(hints[name])
                if default not in (dataclasses.MISSING, inspect.Parameter.empty):
                    defaults[name] = default
    for name, o in overrides.items():
        if name not in out and not isinstance(o, Param):
            raise ValueError(f"param_schema: '{name}' is not a parameter of {sources}")
        if isinstance(o, Param):
            out[name] = o
        elif isinstance(o, tuple):
            out[name] = dataclasses.replace(out[name], min=o[0], max=o[1])
        else:
            out[name] = dataclasses.replace(out[name], choices=tuple(o))
    for name, default in defaults.items():  # a range that excludes the code's default is a typo
        try:
            out[name].check(list(default) if isinstance(default, tuple) else default)
        except ValueError as exc:
            raise ValueError(f"param_schema: the default {name}={default!r} does not fit: {exc}") from None
    return out
