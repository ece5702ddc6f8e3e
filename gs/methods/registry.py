"""The method registry: a method is one file (or one installed package) that declares a spec.

Every module of ``gs/methods/`` that defines a module-level ``SPEC = MethodSpec(...)`` is a
method; so is every object of the Python entry-point group ``gs_bench.methods`` (a
:class:`MethodSpec`, or a module with a ``SPEC``), so a method can ship as its own package::

    # pyproject.toml of a plug-in package
    [project.entry-points."gs_bench.methods"]
    mymethod = "my_package.method:SPEC"

A :class:`MethodSpec` says what a method is (``train``: consumes a scene and produces a
model; ``codec``: consumes any trained model and produces a bitstream), where its code lives
(``module:Class`` paths or the classes), its parameters with their types and ranges
(:class:`Param`, checked before anything runs), its defaults, presets per dataset or
``dataset/scene``, its variants (the rate points of its RD curve: name -> parameter
overrides), its default variant, what it takes from the baseline's run, and where its paper
numbers and its deviations from the authors' code are written down (YAML beside the method:
``paper_results/<id>.yaml``, ``deviations/<id>.yaml``; formats in their README files).

Importing this module imports no method: the modules are discovered on the first use of
:data:`METHODS` (which imports torch through them).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import pkgutil
import re
import types
import typing
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

ENTRY_POINT_GROUP = "gs_bench.methods"
HERE = Path(__file__).resolve().parent
DEVIATIONS_DIR = HERE / "deviations"
PAPER_RESULTS_DIR = HERE / "paper_results"


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


@dataclass(frozen=True)
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
        if value is None:
            if self.nullable:
                return None
            raise ValueError("must not be null")
        if self.type == "int_list":
            if not isinstance(value, (list, tuple)):
                raise ValueError("expects a list of integers")
            return [_INT.check(v) for v in value]
        if isinstance(value, str) and self.type in ("int", "float", "bool"):
            value = parse_scalar(value)
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


# ------------------------------------------------------------------------------ deviations
_DEVIATION_KEYS = ("aspect", "upstream", "ours", "why", "effect")


@dataclass(frozen=True)
class Deviation:
    """One difference between our code and the authors' code at the pinned commit."""

    aspect: str  # what differs, e.g. "opacity learning rate"
    upstream: str  # file:line at the pinned commit, and what it does there
    ours: str  # what we do
    why: str  # why we differ (or that we follow the paper, or a bug we do not copy)
    effect: str  # the measured effect, or "unmeasured"


@dataclass(frozen=True)
class Fidelity:
    """The authors' code (``repository`` URL, ``commit`` or "unpinned") and our deviations."""

    repository: str
    commit: str
    deviations: tuple[Deviation, ...] = ()


def load_fidelity(path: str | Path) -> Fidelity:
    """Read a deviations file (format: ``gs/methods/deviations/README.md``); every problem is
    one ValueError naming the file and the record."""
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping with repository, commit, deviations")
    missing = [k for k in ("repository", "commit", "deviations") if k not in doc]
    unknown = sorted(set(doc) - {"repository", "commit", "branch", "deviations"})
    if missing or unknown:
        raise ValueError(f"{path}: missing keys {missing}, unknown keys {unknown} "
                         "(allowed: repository, commit, branch, deviations)")
    for key in ("repository", "commit"):
        if not isinstance(doc[key], str) or not doc[key].strip():
            raise ValueError(f"{path}: '{key}' must be a non-empty string")
    if not isinstance(doc["deviations"], list):
        raise ValueError(f"{path}: 'deviations' must be a list of mappings")
    devs = []
    for i, rec in enumerate(doc["deviations"]):
        where = f"{path}: deviation {i + 1}"
        if not isinstance(rec, dict):
            raise ValueError(f"{where}: expected a mapping with keys {list(_DEVIATION_KEYS)}")
        if set(rec) != set(_DEVIATION_KEYS):
            raise ValueError(f"{where} ({rec.get('aspect', '?')}): keys must be exactly {list(_DEVIATION_KEYS)}, "
                             f"got {sorted(rec)}")
        bad = [k for k in _DEVIATION_KEYS if not isinstance(rec[k], str) or not rec[k].strip()]
        if bad:
            raise ValueError(f"{where} ({rec.get('aspect', '?')}): {bad} must be non-empty text")
        devs.append(Deviation(**{k: rec[k].strip() for k in _DEVIATION_KEYS}))
    return Fidelity(doc["repository"].strip(), str(doc["commit"]).strip(), tuple(devs))


# ------------------------------------------------------------------------------ the spec
@dataclass(frozen=True)
class MethodSpec:
    id: str
    kind: str  # "train" | "codec"
    title: str
    spec: str = ""  # the method's written spec, e.g. "methods/gns.md"
    strategy: str | type | None = None  # the training Strategy, or its "module:Class" (kind == "train")
    codec: str | type | None = None  # the Codec, or its "module:Class" (kind == "codec", or a trained codec)
    #: name -> type and range of every parameter the method accepts (checked before a run)
    params: Mapping[str, Param] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=lambda: {"default": {}})
    default_variant: str = "default"
    # a trained codec (NSVQ-GS) may start from the baseline's checkpoint at this iteration
    init_from_baseline_at: int | None = None
    # params filled from the baseline's run on the same scene: param name -> key of the
    # baseline's train_stats.json (e.g. GNS's budget_fraction needs the baseline's final count);
    # the pipeline makes the baseline run an input of this method's training
    baseline_inputs: dict[str, str] = field(default_factory=dict)
    #: registry order (tables, the baseline = the first training method): built-ins 0..50
    order: int = 100
    #: deviations from the authors' code; None = ``gs/methods/deviations/<id>.yaml`` if present
    deviations_file: str | Path | None = None
    #: paper-reported numbers; None = ``gs/methods/paper_results/<id>.yaml`` if present
    paper_results: str | Path | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("train", "codec"):
            raise ValueError(f"method '{self.id}': kind must be 'train' or 'codec', got {self.kind!r}")
        if self.default_variant not in self.variants:
            raise ValueError(f"method '{self.id}': default variant '{self.default_variant}' is not a variant")
        if self.params:  # the spec's own values must fit its schema
            for where, values in [("defaults", self.defaults), *(
                    (f"presets.{k}", v) for k, v in self.presets.items()), *(
                    (f"variants.{k}", v) for k, v in self.variants.items())]:
                self.check_params(values, where=where)
            unknown = sorted(set(self.baseline_inputs) - set(self.params))
            if unknown:
                raise ValueError(f"method '{self.id}': baseline_inputs {unknown} are not parameters")

    def load(self, attr: str) -> Any:
        """The class behind ``strategy`` or ``codec`` (imported on first use when a path)."""
        path = getattr(self, attr)
        if path is None:
            raise ValueError(f"method '{self.id}' has no {attr}")
        if not isinstance(path, str):
            return path
        module, _, name = path.partition(":")
        return getattr(importlib.import_module(module), name)

    def make_strategy(self, params: Mapping[str, Any]) -> Any:
        """The method's training Strategy built with ``params``."""
        if self.kind != "train":
            raise ValueError(f"method '{self.id}' is a {self.kind}, not a training method")
        cls = self.load("strategy")
        try:
            return cls(**params)
        except TypeError as exc:
            raise ValueError(f"method '{self.id}': bad parameters {sorted(params)}: {exc}") from exc

    def check_params(self, values: Mapping[str, Any], where: str = "params") -> dict[str, Any]:
        """``values`` checked against :attr:`params` and coerced (``"1e-4"`` -> 1e-4); one
        :class:`ParamError` line naming the method, the parameter and the value otherwise.
        A method without a schema accepts anything."""
        if not self.params:
            return dict(values)
        out = {}
        for name, value in values.items():
            if name not in self.params:
                raise ParamError(f"method '{self.id}' {where}: unknown parameter '{name}' "
                                 f"(known: {', '.join(sorted(self.params))})")
            try:
                out[name] = self.params[name].check(value)
            except ValueError as exc:
                raise ParamError(f"method '{self.id}' {where}: {name}={value!r} {exc}") from None
        return out

    def params_for(self, variant: str, dataset: str | None = None, scene: str | None = None,
                   overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """defaults <- dataset preset <- dataset/scene preset <- variant <- user overrides
        (checked and coerced by :meth:`check_params`)."""
        if variant not in self.variants:
            raise KeyError(f"method '{self.id}' has no variant '{variant}' (has: {sorted(self.variants)})")
        out = dict(self.defaults)
        if dataset and dataset in self.presets:
            out.update(self.presets[dataset])
        if dataset and scene and f"{dataset}/{scene}" in self.presets:
            out.update(self.presets[f"{dataset}/{scene}"])
        out.update(self.variants[variant])
        out.update(self.check_params(overrides or {}))
        return out

    @property
    def deviations_path(self) -> Path | None:
        return self._file(self.deviations_file, DEVIATIONS_DIR)

    def _file(self, given: str | Path | None, folder: Path) -> Path | None:
        if given is not None:
            return Path(given)
        path = folder / f"{self.id}.yaml"
        return path if path.is_file() else None

    @cached_property
    def fidelity(self) -> Fidelity | None:
        """The authors' repository, pinned commit and our deviations, or None when the method
        has no deviations file."""
        path = self.deviations_path
        return None if path is None else load_fidelity(path)

    @property
    def paper_results_file(self) -> Path | None:
        return self._file(self.paper_results, PAPER_RESULTS_DIR)


def deviations_table(method_ids: list[str] | None = None) -> Any:
    """One row per deviation (method, repository, commit, aspect, upstream, ours, why,
    effect) of the given methods (default: all), a row saying so for a method without a
    deviations file: the report's fidelity table."""
    import pandas as pd

    rows = []
    for mid in method_ids if method_ids is not None else list(METHODS):
        fid = get_method(mid).fidelity
        if fid is None:
            rows.append({"method": mid, "repository": "not recorded"})
            continue
        base = {"method": mid, "repository": fid.repository, "commit": fid.commit}
        rows += [{**base, **dataclasses.asdict(d)} for d in fid.deviations] or [{**base, "aspect": "none listed"}]
    return pd.DataFrame(rows, columns=["method", "repository", "commit", *_DEVIATION_KEYS])


# ------------------------------------------------------------------------------ discovery
class _Registry(Mapping[str, MethodSpec]):
    """Method id -> spec, in registry order; filled on first use (imports every method)."""

    def __init__(self) -> None:
        self._specs: dict[str, MethodSpec] | None = None
        self._sources: dict[str, str] = {}
        self._loading = False

    def _load(self) -> dict[str, MethodSpec]:
        if self._specs is None:
            if self._loading:
                raise RuntimeError("the method registry was used while a method module was being imported")
            self._loading = True
            try:
                found = _discover()
            finally:
                self._loading = False
            self._sources = {s.id: src for s, src in found}
            self._specs = {s.id: s for s, _ in sorted(found, key=lambda x: x[0].order)}
        return self._specs

    def __getitem__(self, key: str) -> MethodSpec:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def sources(self) -> dict[str, str]:
        """Method id -> where its spec came from (module or entry point)."""
        self._load()
        return dict(self._sources)

    def refresh(self) -> None:
        """Discover again (after installing a plug-in in this process)."""
        self._specs = None


def _discover() -> list[tuple[MethodSpec, str]]:
    from importlib.metadata import entry_points

    found: list[tuple[MethodSpec, str]] = []
    import gs.methods as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name == "registry" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        if isinstance(getattr(module, "SPEC", None), MethodSpec):
            found.append((module.SPEC, module.__name__))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        src = f"entry point {ep.name} = {ep.value}"
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plug-in must not hide the other methods
            warnings.warn(f"method plug-in not loaded ({src}): {type(exc).__name__}: {exc}", stacklevel=2)
            continue
        spec = getattr(obj, "SPEC", obj)
        if not isinstance(spec, MethodSpec):
            warnings.warn(f"method plug-in not loaded ({src}): not a MethodSpec", stacklevel=2)
            continue
        found.append((spec, src))
    seen: dict[str, str] = {}
    for spec, src in found:
        if spec.id in seen:
            raise ValueError(f"method '{spec.id}' is declared twice: by {seen[spec.id]} and by {src}")
        seen[spec.id] = src
    return found


METHODS: Mapping[str, MethodSpec] = _Registry()


def get_method(method_id: str) -> MethodSpec:
    try:
        return METHODS[method_id]
    except KeyError:
        raise KeyError(f"unknown method '{method_id}' (registered: {sorted(METHODS)})") from None


def list_methods(kind: str | None = None) -> list[str]:
    return [m for m, s in METHODS.items() if kind is None or s.kind == kind]


def train_method(scene: Any, method_id: str, params: dict[str, Any], out_dir: str | Path | None,
                 config: Any, init_model: Any = None, meta: dict[str, Any] | None = None) -> Any:
    """Look ``method_id`` up, build its Strategy with ``params`` and train it on ``scene``
    (:func:`gs.train.trainer.train_strategy`; outputs and resuming as there)."""
    from gs.train.trainer import train_strategy

    strategy = get_method(method_id).make_strategy(params)
    return train_strategy(scene, strategy, out_dir, config, init_model=init_model,
                          meta={"method": method_id, "params": params, "scene": scene.name, **(meta or {})})
