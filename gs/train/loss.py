"""The photometric training loss, 0.8 L1 + 0.2 (1 - SSIM), and its CUDA-graph form.

On the small scenes of this benchmark a training step is bound by host overhead, not by the
rasterizer: PyTorch spends microseconds of Python and dispatch per operation, and the loss
(clamp, L1, the SSIM blur and formula) is about 25 operations forward and as many backward
nodes. A profile on an H200 put 1.2 ms of host time per step in the loss forward alone, for
0.7 ms of GPU work. :class:`TrainingLoss` captures the loss and its backward once per image
shape as CUDA graphs (``torch.cuda.make_graphed_callables``): each step then costs two input
copies and one graph launch forward, one launch backward, with the same arithmetic.
"""

from __future__ import annotations

import os
import warnings
from typing import Callable

import torch


def photometric_loss(image: torch.Tensor, gt: torch.Tensor, lambda_dssim: float) -> torch.Tensor:
    """0.8 L1 + 0.2 (1 - SSIM) on (H,W,3) images."""
    from gs.eval.metrics import ssim

    l1 = (image - gt).abs().mean()
    a = image.permute(2, 0, 1)[None]
    b = gt.permute(2, 0, 1)[None]
    return (1.0 - lambda_dssim) * l1 + lambda_dssim * (1.0 - ssim(a, b))


class TrainingLoss:
    """``loss(render, gt)``: the photometric loss of the (optionally [0,1]-clamped) render.

    On CUDA it runs as CUDA graphs, one pair (forward, backward) per image shape, up to
    ``max_graphs`` shapes (then eager); ``GS_GRAPH_LOSS=0`` or ``graphed=False`` turns graphs
    off. If capturing fails, it warns once and stays eager: the numbers are the same either way.
    A graph's buffers are reused by the next call of the same shape, so call it once per
    backward pass (the Trainer does; a strategy that needs a second loss uses
    :func:`photometric_loss`).
    """

    def __init__(self, lambda_dssim: float, clamp: bool, graphed: bool | None = None, max_graphs: int = 8) -> None:
        self.lambda_dssim, self.clamp = float(lambda_dssim), bool(clamp)
        if graphed is None:
            graphed = os.environ.get("GS_GRAPH_LOSS", "1") != "0"
        self.graphed = graphed
        self.max_graphs = max_graphs
        self._graphs: dict[tuple, Callable] = {}

    def eager(self, image: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        if self.clamp:
            image = image.clamp(0.0, 1.0)
        return photometric_loss(image, gt, self.lambda_dssim)

    def _graph_for(self, image: torch.Tensor, gt: torch.Tensor) -> Callable | None:
        key = (tuple(image.shape), tuple(gt.shape), image.dtype, gt.dtype, image.device)
        fn = self._graphs.get(key)
        if fn is not None or len(self._graphs) >= self.max_graphs:
            return fn
        try:
            sample = (image.detach().clone().requires_grad_(image.requires_grad), gt.detach().clone())
            fn = torch.cuda.make_graphed_callables(self.eager, sample)
        except Exception as exc:  # noqa: BLE001 - any capture failure: stay eager, same numbers
            warnings.warn(f"CUDA graph of the training loss failed ({exc!r}); using the eager loss", stacklevel=3)
            self.graphed = False
            return None
        self._graphs[key] = fn
        return fn

    def __call__(self, image: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        if self.graphed and image.is_cuda and image.requires_grad and torch.is_grad_enabled():
            fn = self._graph_for(image, gt)
            if fn is not None:
                # the graph's output is a static buffer, overwritten by the next replay
                return fn(image, gt).clone()
        return self.eager(image, gt)


__all__ = ["photometric_loss", "TrainingLoss"]
