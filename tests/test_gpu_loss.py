"""The CUDA-graph training loss equals the eager one, value and gradient (skipped without CUDA)."""

from __future__ import annotations

import pytest
import torch

from gs.train.loss import TrainingLoss

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("clamp", [True, False])
def test_graphed_loss_matches_eager(clamp):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    g = torch.Generator(device="cuda").manual_seed(0)
    graphed = TrainingLoss(0.2, clamp, graphed=True)
    eager = TrainingLoss(0.2, clamp, graphed=False)
    for shape in [(48, 64, 3), (48, 64, 3), (30, 40, 3), (48, 64, 3)]:  # replays and a second shape
        leaf = (torch.rand(shape, device="cuda", generator=g) * 1.2 - 0.1).requires_grad_(True)
        gt = torch.rand(shape, device="cuda", generator=g)
        grads = []
        for fn in (graphed, eager):
            leaf.grad = None
            loss = fn(leaf * 1.0, gt)  # a non-leaf input, as the render is
            loss.backward()
            grads.append((loss.detach().clone(), leaf.grad.clone()))
        assert torch.allclose(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-7)
        assert torch.allclose(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-9)
    assert graphed.graphed and len(graphed._graphs) == 2
