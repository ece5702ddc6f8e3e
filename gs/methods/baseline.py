"""3D Gaussian Splatting baseline (Kerbl et al., SIGGRAPH 2023): adaptive density control.

Follows methods/baseline-3dgs.md, "Adaptive density control", with the 2024 code's opacity lr
(0.025, set in the Trainer). Deliberately as upstream, including its quirks:

- statistics accumulate from iteration 1; the first refinement is at 600, the last at 14900;
  the average gradient divides by the number of iterations a Gaussian was visible;
- gradients are in NDC units (the backend's pixel gradient times 0.5*W, 0.5*H);
- clone and split use the same averaged gradient, computed before cloning; clones are never
  split; split children keep the parent's opacity;
- screen-size pruning is dead code upstream (``max_radii2D`` is zeroed before the prune mask
  is built), so only alpha < 0.005 and, after the first opacity reset, world size > 0.1*E
  prune. ``screen_size_prune=True`` enables the paper's intended rule instead.
- refinement and opacity reset run before the iteration's optimizer step, as in upstream
  ``train.py``: the replaced parameters have no gradient, so Adam skips that iteration (every
  parameter at a refinement, the opacity at a reset). ``refine_before_step=False`` runs them
  after the step instead.
PLY snapshots follow upstream's order too (saved after the backward pass, before both; see
``Trainer.train``).
Every iteration number is given for the 30k recipe and scaled by ``ctx.at``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from gs.methods.registry import MethodSpec, param_schema
from gs.render.base import RenderOutput
from gs.train import ops
from gs.train.strategy import Strategy, TrainContext


@dataclass
class DensifyConfig:
    densify_from: int = 500
    densify_until: int = 15_000
    densify_interval: int = 100
    grad_threshold: float = 2e-4
    percent_dense: float = 0.01
    prune_opacity: float = 0.005
    opacity_reset_interval: int = 3000
    reset_opacity_value: float = 0.01
    screen_size_limit: float = 20.0
    world_size_limit: float | None = 0.1  # None: the world-size prune rule is off
    screen_size_prune: bool = False
    refine_before_step: bool = True  # upstream's order; False: after the optimizer step


class BaselineStrategy(Strategy):
    """3DGS clone / split / prune / opacity reset. Subclasses override the pieces
    (``prune_mask``, ``densify``, ``is_refine_step`` ...) they change."""

    def __init__(self, **params) -> None:
        super().__init__()
        self.cfg = DensifyConfig(**params)

    # ------------------------------------------------------------------ schedule
    def densifying(self, ctx: TrainContext, step: int) -> bool:
        return step < ctx.at(self.cfg.densify_until)

    def is_refine_step(self, ctx: TrainContext, step: int) -> bool:
        return (self.densifying(ctx, step) and step > ctx.at(self.cfg.densify_from)
                and step % ctx.refine_every(self.cfg.densify_interval) == 0)

    def is_reset_step(self, ctx: TrainContext, step: int) -> bool:
        if not self.densifying(ctx, step):
            return False
        if step % ctx.every(self.cfg.opacity_reset_interval) == 0:
            return True
        return bool(ctx.scene.white_background) and step == ctx.at(self.cfg.densify_from)

    # ------------------------------------------------------------------ statistics
    def initialize(self, ctx: TrainContext) -> None:
        if "grad_accum" not in self.state or self.state["grad_accum"].shape[0] != ctx.model.num_gaussians:
            self.reset_stats(ctx)

    def reset_stats(self, ctx: TrainContext) -> None:
        n, dev = ctx.model.num_gaussians, ctx.model.device
        self.state["grad_accum"] = torch.zeros(n, device=dev)
        self.state["count"] = torch.zeros(n, device=dev)
        self.state["max_radii"] = torch.zeros(n, device=dev)

    def accumulate(self, ctx: TrainContext, out: RenderOutput) -> None:
        vis = out.radii > 0
        g = out.ndc_grad_norm()
        st = self.state
        # in place and few kernels: this runs every step
        st["grad_accum"].add_(g * vis)
        st["count"].add_(vis)
        torch.maximum(st["max_radii"], out.radii, out=st["max_radii"])

    def after_backward(self, ctx: TrainContext, step: int, out: RenderOutput) -> None:
        if self.densifying(ctx, step):
            self.accumulate(ctx, out)
        if self.cfg.refine_before_step:
            self.density_control(ctx, step)

    def after_step(self, ctx: TrainContext, step: int, out: RenderOutput) -> None:
        if not self.cfg.refine_before_step:
            self.density_control(ctx, step)

    @torch.no_grad()
    def density_control(self, ctx: TrainContext, step: int) -> None:
        """The refinement and the opacity reset due at ``step`` (either may replace parameters,
        dropping their gradients: before the optimizer step, Adam then skips them)."""
        if self.is_refine_step(ctx, step):
            self.refine(ctx, step)
        if self.is_reset_step(ctx, step):
            ops.reset_opacity(ctx.model, ctx.optimizer, self.cfg.reset_opacity_value)

    # ------------------------------------------------------------------ refinement
    def average_grads(self) -> torch.Tensor:
        g = self.state["grad_accum"] / self.state["count"]
        return torch.nan_to_num(g, nan=0.0, posinf=0.0)

    def densify(self, ctx: TrainContext, step: int, grads: torch.Tensor) -> None:
        """Clone small, split large Gaussians whose averaged gradient passes the threshold."""
        model, cfg = ctx.model, self.cfg
        max_scale = model.scales.detach().max(dim=1).values
        big = max_scale > cfg.percent_dense * ctx.scene_extent
        high = grads >= cfg.grad_threshold
        n0 = model.num_gaussians
        ops.duplicate(model, ctx.optimizer, high & ~big, self.state)
        split_mask = torch.zeros(model.num_gaussians, dtype=torch.bool, device=model.device)
        split_mask[:n0] = high & big  # clones (appended after n0) are never split
        ops.split(model, ctx.optimizer, split_mask, self.state)

    def too_large(self, ctx: TrainContext, step: int) -> torch.Tensor | None:
        """The 3DGS world-size rule: Gaussians whose largest scale exceeds ``world_size_limit``
        x the scene extent, after the first opacity reset; None where the rule does not act
        (before then, or ``world_size_limit=None``)."""
        cfg = self.cfg
        if cfg.world_size_limit is None or step <= ctx.at(cfg.opacity_reset_interval):
            return None
        return ctx.model.scales.detach().max(dim=1).values > cfg.world_size_limit * ctx.scene_extent

    def prune_mask(self, ctx: TrainContext, step: int) -> torch.Tensor:
        model, cfg = ctx.model, self.cfg
        mask = model.opacities.detach() < cfg.prune_opacity
        large = self.too_large(ctx, step)
        if large is not None:
            mask |= large
        if cfg.screen_size_prune and step > ctx.at(cfg.opacity_reset_interval):
            mask |= self.state["max_radii"] > cfg.screen_size_limit
        return mask

    def refine(self, ctx: TrainContext, step: int) -> None:
        grads = self.average_grads()
        self.densify(ctx, step, grads)
        if not self.cfg.screen_size_prune:
            # upstream zeroes max_radii2D while densifying, before the prune mask is built
            self.state["max_radii"].zero_()
        ops.remove(ctx.model, ctx.optimizer, self.prune_mask(ctx, step), self.state)
        self.reset_stats(ctx)

    def config_dict(self) -> dict:
        return asdict(self.cfg)


# ---------------------------------------------------------------------------- method spec
#: the densification parameters every 3DGS-style strategy accepts, with their ranges
DENSIFY_PARAMS = param_schema(
    DensifyConfig,
    densify_from=(0, None), densify_until=(0, None), densify_interval=(1, None), grad_threshold=(0, None),
    percent_dense=(0, None), prune_opacity=(0, 1), opacity_reset_interval=(1, None),
    reset_opacity_value=(0, 1), screen_size_limit=(0, None), world_size_limit=(0, None),
)

SPEC = MethodSpec(
    id="3dgs", kind="train", title="3D Gaussian Splatting", spec="methods/baseline-3dgs.md",
    strategy=BaselineStrategy, params=DENSIFY_PARAMS, order=0,
    # upstream train.py refines between backward and the optimizer step; this variant after it
    variants={"default": {}, "refine_after_step": {"refine_before_step": False}},
    diagnostics=('refine_after_step',),
)
