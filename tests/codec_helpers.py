"""Shared by the codec tests: random grid points and random Gaussian models."""

from __future__ import annotations

import numpy as np
import torch

from gs.codecs.octree import morton_decode, morton_encode
from gs.model import GaussianModel


def grid_points(n: int, bits: int = 15, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique Morton codes of about ``n`` random grid points, and their coordinates."""
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 2 ** bits, size=(n, 3))
    codes = np.unique(morton_encode(q, bits))
    return codes, morton_decode(codes, bits)


def random_model(n: int = 2000, degree: int = 3, seed: int = 0) -> GaussianModel:
    """A model of ``n`` random Gaussians, clustered (surface-like) so a partition has structure."""
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    centres = torch.rand(8, 3, generator=g) * 2 - 1
    means = centres[torch.randint(0, 8, (n,), generator=g)] + torch.randn(n, 3, generator=g) * 0.1
    return GaussianModel(dict(
        means=means, scales=torch.randn(n, 3, generator=g) * 0.3 - 3,
        quats=torch.randn(n, 4, generator=g), opacities=torch.randn(n, generator=g),
        sh0=torch.randn(n, 1, 3, generator=g), shN=torch.randn(n, k - 1, 3, generator=g) * 0.1), degree)
