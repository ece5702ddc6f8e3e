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
    # params filled from the baseline's run on the same scene: param name -> key of the
    # baseline's train_stats.json (e.g. GNS's budget_fraction needs the baseline's final count);
    # the pipeline makes the baseline run an input of this method's training
    baseline_inputs: dict[str, str] = field(default_factory=dict)

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
    baseline_inputs={"baseline_count": "num_gaussians"},
    # final budget B: budget (absolute) > paper_budget_scale x paper_budget (preset: test.py's
    # per-scene budgets) > budget_fraction x baseline_count (the baseline's final count)
    presets={
        **{f"mipnerf360/{s}": {"paper_budget": 600_000}
           for s in ("bicycle", "flowers", "garden", "stump", "treehill")},
        **{f"mipnerf360/{s}": {"paper_budget": 300_000} for s in ("bonsai", "counter", "kitchen", "room")},
        "deepblending/drjohnson": {"paper_budget": 600_000},
        "deepblending/playroom": {"paper_budget": 300_000},
        "tandt/train": {"paper_budget": 300_000},
        "tandt/truck": {"paper_budget": 600_000},
    },
    # the RD sweep; the paper's own budgets: params {paper_budget_scale: 1.0} (0.4 = "small")
    variants={f"{p}pct": {"budget_fraction": p / 100} for p in (5, 10, 15, 25, 40)},
    default_variant="15pct",
))
register(MethodSpec(
    id="argp", kind="train", title="ARGP: adaptive opacity pruning + recovery", spec="methods/argp.md",
    strategy="gs.methods.argp:ARGPStrategy",
    # RD sweep, mild -> aggressive: AOP quantile, IRP freeze quantile, recovered fraction.
    # Final count / count at 12k (5 IRP rounds): 0.43, 0.27, 0.15 (paper), 0.064, 0.028.
    # Upstream's effective (broken) freezing: params {freeze_gradients: false}; the pre-Mar-2026
    # defaults: {freeze_quantile: 0.5, recover_ratio: 0.35} (about 0.20).
    variants={
        "mild": {"prune_quantile": 0.005, "freeze_quantile": 0.5, "recover_ratio": 0.6},
        "light": {"prune_quantile": 0.01, "freeze_quantile": 0.6, "recover_ratio": 0.5},
        "default": {},  # the paper's setting: 0.01 / 0.7 / 0.4
        "strong": {"prune_quantile": 0.02, "freeze_quantile": 0.7, "recover_ratio": 0.25},
        "aggressive": {"prune_quantile": 0.03, "freeze_quantile": 0.8, "recover_ratio": 0.2},
    },
    default_variant="default",
))
register(MethodSpec(
    id="edim", kind="train", title="EDIM: error-driven densification + importance", spec="methods/edim.md",
    strategy="gs.methods.edim:EDIMStrategy",
    # README rows: "Tag + GradPrune" and "+ Decomp 0.1 / 0.3" (post-training importance cut)
    variants={
        "tag_gradprune": {},
        "decomp_0.1": {"final_prune_threshold": 0.1},
        "decomp_0.3": {"final_prune_threshold": 0.3},
        # diagnostic, not upstream: the 3DGS world-size prune rule off (EDIMStrategy docstring)
        "no_ws_prune": {"world_size_limit": None},
        "no_ws_prune_decomp_0.1": {"world_size_limit": None, "final_prune_threshold": 0.1},
    },
    default_variant="decomp_0.1",
))
register(MethodSpec(
    id="nsvqgs", kind="train", title="NSVQ-GS: noise-substituted vector quantization", spec="methods/nsvqgs.md",
    strategy="gs.methods.nsvqgs:NSVQStrategy", codec="gs.methods.nsvqgs:NSVQCodec",
    init_from_baseline_at=15_000,
    # the RD sweep: codebook sizes scale / rotation / DC colour / SH rest (strategy + codec
    # params); "k4k" = the README's 4096/4096/1024/1024, "k16k" = the repo figure's 14/12-bit point
    variants={
        "k256": {"k_scale": 256, "k_rotation": 256, "k_dc": 64, "k_sh": 64},
        "k1k": {"k_scale": 1024, "k_rotation": 1024, "k_dc": 256, "k_sh": 256},
        "k4k": {"k_scale": 4096, "k_rotation": 4096, "k_dc": 1024, "k_sh": 1024},
        "k16k": {"k_scale": 16384, "k_rotation": 16384, "k_dc": 4096, "k_sh": 4096},
    },
    default_variant="k4k",
))
register(MethodSpec(
    id="hgsc", kind="codec", title="HGSC: hierarchical Gaussian splatting compression", spec="methods/hgsc.md",
    codec="gs.methods.hgsc:HGSCCodec",
    # the paper's big-scene setting (Mip-NeRF 360, T&T, DB: run_big_scenes.py)
    defaults={"prune_percent": 66.0, "block_size": 512, "lod_bits": 8, "lod_bits_uv": 4},
    # the RD sweep: prune percentage (REMOVED) and LoD residual bit depths;
    # "small_scenes" = the paper's other setting (BungeeNeRF, DyMVHumans: run_small_scenes.py)
    # "p0_b10" / "p20": little or no significance pruning, for scenes where most Gaussians
    # matter (forward-facing LLFF fern loses 5.6 dB at 66 %, nearly all of it from the pruning)
    variants={
        "p0_b10": {"prune_percent": 0.0, "lod_bits": 10, "lod_bits_uv": 6},
        "p20": {"prune_percent": 20.0},
        "p40_b10": {"prune_percent": 40.0, "lod_bits": 10, "lod_bits_uv": 6},
        "p50": {"prune_percent": 50.0},
        "small_scenes": {"prune_percent": 60.0, "block_size": 256},
        "default": {},
        "p75_b6": {"prune_percent": 75.0, "lod_bits": 6, "lod_bits_uv": 3},
        "p85_b5": {"prune_percent": 85.0, "lod_bits": 5, "lod_bits_uv": 3},
    },
    default_variant="default",
))
