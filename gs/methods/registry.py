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
(:class:`~gs.methods.params.Param`, checked before anything runs), its defaults, presets per dataset or
``dataset/scene``, its variants (the rate points of its RD curve: name -> parameter
overrides), its default variant, what it takes from the baseline's run, and where its paper
numbers and its deviations from the authors' code are written down (YAML beside the method:
``paper_results/<id>.yaml``, ``deviations/<id>.yaml``, read by :mod:`gs.methods.deviations`;
formats in their README files).

Importing this module imports no method: the modules are discovered on the first use of
:data:`METHODS` (which imports torch through them).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from gs.io import load_plugins
from gs.methods.deviations import DEVIATION_KEYS, Fidelity, load_fidelity
from gs.methods.params import Param, ParamError, param_schema, parse_scalar

ENTRY_POINT_GROUP = "gs_bench.methods"
HERE = Path(__file__).resolve().parent
DEVIATIONS_DIR = HERE / "deviations"
PAPER_RESULTS_DIR = HERE / "paper_results"


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
    #: variants that are not rate points of the RD curve (fidelity and diagnostic switches): run
    #: only when named, never by ``variants: all`` or ``default_variants: N``
    diagnostics: tuple[str, ...] = ()
    #: when and why the method is known to fail (shown beside runs the tables flag as failed)
    failure_note: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("train", "codec"):
            raise ValueError(f"method '{self.id}': kind must be 'train' or 'codec', got {self.kind!r}")
        if self.default_variant not in self.variants:
            raise ValueError(f"method '{self.id}': default variant '{self.default_variant}' is not a variant")
        if set(self.diagnostics) - set(self.variants):
            raise ValueError(f"method '{self.id}': diagnostics {sorted(set(self.diagnostics) - set(self.variants))} "
                             f"are not variants")
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
    def consumes(self) -> str:
        """What the method's jobs take in, in words (the DAG edges into it)."""
        out = ["a trained model (any training method)"] if self.kind == "codec" else ["a scene"]
        if self.init_from_baseline_at:
            out.append(f"the baseline's state at iteration {self.init_from_baseline_at} (when shared)")
        if self.baseline_inputs:
            out.append("the baseline's " + ", ".join(f"{v} as {k}" for k, v in self.baseline_inputs.items()))
        return "; ".join(out)

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
    return pd.DataFrame(rows, columns=["method", "repository", "commit", *DEVIATION_KEYS])


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
    found: list[tuple[MethodSpec, str]] = []
    import gs.methods as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name == "registry" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        if isinstance(getattr(module, "SPEC", None), MethodSpec):
            found.append((module.SPEC, module.__name__))
    plugins = load_plugins(ENTRY_POINT_GROUP, MethodSpec, "method plug-in", unwrap="SPEC")
    found += [(spec, src) for _, spec, src in plugins]
    seen: dict[str, str] = {}
    for spec, src in found:
        if spec.id in seen:
            raise ValueError(f"method '{spec.id}' is declared twice: by {seen[spec.id]} and by {src}")
        seen[spec.id] = src
    return found


METHODS = _Registry()  # id -> MethodSpec, discovered on first use


def get_method(method_id: str) -> MethodSpec:
    try:
        return METHODS[method_id]
    except KeyError:
        raise KeyError(f"unknown method '{method_id}' (registered: {sorted(METHODS)})") from None


def upstream_pin(method_id: str) -> tuple[str, str]:
    """(repository, commit) of the method's authors' code, from its deviations file."""
    fidelity = get_method(method_id).fidelity
    if fidelity is None:
        raise ValueError(f"method '{method_id}': no deviations file, so no upstream repository and commit")
    return fidelity.repository, fidelity.commit


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


__all__ = ["ENTRY_POINT_GROUP", "METHODS", "MethodSpec", "Param", "ParamError", "Fidelity", "deviations_table",
           "get_method", "list_methods", "load_fidelity", "param_schema", "parse_scalar", "train_method"]
