"""The fused Triton nearest-code kernel agrees with the torch path on CUDA (skipped elsewhere)."""

from __future__ import annotations

import pytest
import torch

from gs.train.nearest import fused_available, nearest_code

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("kernel", ["dot", "fma"])
@pytest.mark.parametrize("n,k,d", [(1000, 17, 3), (50_000, 4096, 4), (20_000, 1024, 45), (3, 1, 3), (777, 100, 16)])
def test_fused_nearest_code_matches_torch(n, k, d, kernel):
    if not torch.cuda.is_available() or not fused_available("cuda"):
        pytest.skip("needs CUDA and Triton")
    g = torch.Generator(device="cuda").manual_seed(n + k)
    x = torch.randn(n, d, device="cuda", generator=g)
    c = torch.randn(k, d, device="cuda", generator=g)
    fused = nearest_code(x, c, fused=True, kernel=kernel)
    ref = nearest_code(x, c, fused=False)
    assert fused.dtype == torch.long and fused.shape == (n,)
    dist = torch.cdist(x.double(), c.double())
    rows = torch.arange(n, device="cuda")
    # same code, or a code at the same distance to float32 rounding (near-ties may differ)
    gap = dist[rows, fused] - dist[rows, ref]
    assert gap.abs().max() < 1e-4
    assert (fused == ref).float().mean() > 0.999
    # exact duplicates of a code: the lowest index wins, as with torch.argmin
    c2 = torch.cat([c, c])
    assert torch.equal(nearest_code(x, c2, fused=True, kernel=kernel), nearest_code(x, c, fused=True, kernel=kernel))
