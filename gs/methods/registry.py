"""The method registry: adding a method = one file in ``gs/methods/`` + one entry below.

A :class:`MethodSpec` says what a method is (``train``: consumes a scene and produces a
model; ``codec``: consumes any trained model and produces a bitstream), where its code lives
(lazy ``module:Class`` paths, so importing the registry imports no method), its default
parameters, presets per dataset or ``dataset/scene``, its variants (the rate points of its RD
curve: name -> parameter overrides) and its default variant. Paper-reported numbers live in
``paper_results.yaml`` beside this file, with their sources.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MethodSpec:
    id: str
    kind: str  # "train" | "codec"
    title: str
    spec: str  # the method's spec, e.g. "methods/gns.md"
    strategy: str | None = None  # "module:Class" of the training Strategy (kind == "train")
    codec: str | None = None  # "module:Class" of the Codec (kind == "codec", or a trained codec)
    defaults: dict[str, Any] = field(default_factory=dict)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=lambda: {"default": {}})
    default_variant: str = "default"
    # a trained codec (NSVQ-GS) may start from the baseline's checkpoint at this iteration
    init_from_baseline_at: int | None = None

    def load(self, attr: str) -> Any:
        path = getattr(self, attr)
        if path is None:
            raise ValueError(f"method '{self.id}' has no {attr}")
        module, _, name = path.partition(":")
        return getattr(importlib.import_module(module), name)

    def params_for(self, variant: str, dataset: str | None = None, scene: str | None = None,
                   overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """defaults <- dataset preset <- dataset/scene preset <- variant <- user overrides."""
        if variant not in self.variants:
            raise KeyError(f"method '{self.id}' has no variant '{variant}' (has: {sorted(self.variants)})")
        out = dict(self.defaults)
        if dataset and dataset in self.presets:
            out.update(self.presets[dataset])
        if dataset and scene and f"{dataset}/{scene}" in self.presets:
            out.update(self.presets[f"{dataset}/{scene}"])
        out.update(self.variants[variant])
        out.update(overrides or {})
        return out


METHODS: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    if spec.id in METHODS:
        raise ValueError(f"method '{spec.id}' registered twice")
    if spec.kind not in ("train", "codec"):
        raise ValueError(f"method '{spec.id}': kind must be 'train' or 'codec'")
    METHODS[spec.id] = spec
    return spec


def get_method(method_id: str) -> MethodSpec:
    try:
        return METHODS[method_id]
    except KeyError:
        raise KeyError(f"unknown method '{method_id}' (registered: {sorted(METHODS)})") from None


def list_methods(kind: str | None = None) -> list[str]:
    return [m for m, s in METHODS.items() if kind is None or s.kind == kind]


# ---------------------------------------------------------------------------- entries
register(MethodSpec(
    id="3dgs", kind="train", title="3D Gaussian Splatting", spec="methods/baseline-3dgs.md",
    strategy="gs.methods.baseline:BaselineStrategy",
))
# Each entry below is owned by its method file; variants are the rate points of the RD curve.
register(MethodSpec(
    id="gns", kind="train", title="GNS: gradient-driven natural selection", spec="methods/gns.md",
    strategy="gs.methods.gns:GNSStrategy",
))
register(MethodSpec(
    id="argp", kind="train", title="ARGP: adaptive opacity pruning + recovery", spec="methods/argp.md",
    strategy="gs.methods.argp:ARGPStrategy",
))
register(MethodSpec(
    id="edim", kind="train", title="EDIM: error-driven densification + importance", spec="methods/edim.md",
    strategy="gs.methods.edim:EDIMStrategy",
))
register(MethodSpec(
    id="nsvqgs", kind="train", title="NSVQ-GS: noise-substituted vector quantization", spec="methods/nsvqgs.md",
    strategy="gs.methods.nsvqgs:NSVQStrategy", codec="gs.methods.nsvqgs:NSVQCodec",
    init_from_baseline_at=15_000,
))
register(MethodSpec(
    id="hgsc", kind="codec", title="HGSC: hierarchical Gaussian splatting compression", spec="methods/hgsc.md",
    codec="gs.methods.hgsc:HGSCCodec",
))
