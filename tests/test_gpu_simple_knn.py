"""simple-knn's ``distCUDA2`` (upstream 3DGS's initial-scale search) gives the exact KD-tree's
mean squared 3-NN distances on a cloud where its approximate search should be exact (skipped
without CUDA or simple-knn)."""

from __future__ import annotations

import pytest
import torch

from gs import model as gm

pytestmark = pytest.mark.gpu


def test_simple_knn_matches_the_kd_tree():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    try:
        from simple_knn._C import distCUDA2  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"simple-knn not installed ({exc})")
    assert gm.init_knn() == gm.KNN_SIMPLE  # installed + CUDA: what the trainer records and uses
    g = torch.Generator().manual_seed(0)
    # a jittered grid: every point's 3 nearest neighbours are well separated from the 4th, so the
    # box-based approximate search of simple-knn has no near-ties to get wrong
    grid = torch.stack(torch.meshgrid(*[torch.arange(12.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    xyz = grid + 0.05 * torch.rand(grid.shape, generator=g)
    exact = gm.mean_sq_dist_3nn(xyz, knn=gm.KNN_KDTREE)
    fast = gm.mean_sq_dist_3nn(xyz, knn=gm.KNN_SIMPLE)
    rel = ((fast - exact).abs() / exact).max().item()
    print(f"simple-knn vs KD-tree on {len(xyz)} points: max relative difference {rel:.2e}")
    assert rel < 1e-4
