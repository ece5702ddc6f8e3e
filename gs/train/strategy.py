"""Strategy: the training-time policy of a method (densify / prune / extra losses).

The Trainer calls the hooks in this order every iteration ``step`` (1-based, as upstream):

    out = render(..., opacities=strategy.render_opacities(ctx))
    loss = photometric + strategy.loss(ctx, step, out, gt)
    loss.backward()
    strategy.after_backward(ctx, step, out)      # read gradients, accumulate statistics; refine
                                                 # here to act before the step, as upstream 3DGS
    optimizer.step(); optimizer.zero_grad()
    strategy.after_step(ctx, step, out)          # changes that follow the step

``initialize(ctx)`` runs once before the first step (also after a resume, with the restored
state), ``finalize(ctx)`` once after the last (e.g. a final cut to a budget). A strategy keeps
its own statistics in ``self.state`` (a dict of tensors with first dim N, kept aligned by
:mod:`gs.train.ops`, and plain values); ``state_dict``/``load_state_dict`` checkpoint it.

Every iteration number in a strategy config is given for the 30k-iteration recipe and turned
into the run's iteration with ``ctx.at(n)``, so one ``iterations`` knob scales every schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from gs.data.scene import Scene
    from gs.model import GaussianModel
    from gs.render.base import RenderOutput

REFERENCE_ITERATIONS = 30_000


@dataclass
class TrainContext:
    """Everything a strategy hook may read or change."""

    model: "GaussianModel"
    optimizer: torch.optim.Optimizer
    scene: "Scene"
    scene_extent: float
    iterations: int
    backend: str
    device: torch.device
    background: torch.Tensor
    seed: int = 0
    step: int = 0
    active_sh_degree: int = 0
    log: dict[str, Any] = field(default_factory=dict)
    #: floor of the refinement interval: a 30k-recipe interval of 100 scaled to a short run
    #: would refine every step from single-view gradients and the count would explode
    min_refine_interval: int = 10
    #: the training view of the current iteration (set by the Trainer before it renders), for
    #: strategies that render or cull per view (NSVQ-GS's visible-only quantization)
    camera: Any = None

    def at(self, reference_step: int) -> int:
        """Iteration of this run that corresponds to ``reference_step`` of the 30k recipe."""
        return int(round(reference_step * self.iterations / REFERENCE_ITERATIONS))

    def refine_every(self, reference_interval: int) -> int:
        """A densification interval of the 30k recipe, scaled, never below
        ``min_refine_interval`` (no effect at 3000 iterations or more)."""
        return max(self.min_refine_interval, self.at(reference_interval))

    def every(self, reference_interval: int) -> int:
        """An interval of the 30k recipe, scaled, never below 1."""
        return max(1, self.at(reference_interval))


class Strategy:
    """Base class: plain optimisation, no densification. Subclasses override the hooks."""

    #: parameter name -> learning rate override (else the Trainer's defaults).
    lr_overrides: dict[str, float] = {}

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def initialize(self, ctx: TrainContext) -> None:
        pass

    def num_iterations(self, ctx: TrainContext) -> int:
        """Iterations this run trains. Default: ``ctx.iterations`` (the 30k recipe, scaled). A
        method whose recipe is longer than 30k (NSVQ-GS: 45k) returns ``ctx.at(45_000)``;
        ``ctx.at`` and the position-lr schedule keep the 30k scale (lr flat after it)."""
        return ctx.iterations

    def render_opacities(self, ctx: TrainContext) -> torch.Tensor | None:
        """Opacities to render with (None = the model's own)."""
        return None

    def render_params(self, ctx: TrainContext) -> dict[str, torch.Tensor] | None:
        """Replacement activated tensors for the training render, any of ``means``, ``quats``
        (normalised), ``scales`` (activated), ``opacities`` (activated), ``sh`` (N,K,3) — e.g.
        the noise-substituted quantized attributes of NSVQ-GS. None = the model's own."""
        return None

    def render_options(self, ctx: TrainContext) -> dict[str, Any]:
        """Extra backend options for the training render (e.g. ``absgrad=True``)."""
        return {}

    def loss(self, ctx: TrainContext, step: int, out: "RenderOutput", gt: torch.Tensor) -> torch.Tensor | None:
        """Extra loss terms added to the photometric loss (None = nothing)."""
        return None

    def after_backward(self, ctx: TrainContext, step: int, out: "RenderOutput") -> None:
        pass

    def after_step(self, ctx: TrainContext, step: int, out: "RenderOutput") -> None:
        pass

    def finalize(self, ctx: TrainContext) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return dict(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = dict(state)
