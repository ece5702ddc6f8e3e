"""Per-Gaussian statistics (gs.train.stats) against the brute-force reference renderer."""

from __future__ import annotations

import torch

from gs.model import GaussianModel
from gs.train.stats import summed_blend_weights, weighted_blend_weights
from tests.test_render import make_camera, random_scene, reference_render


def _model(n: int, seed: int, dtype=torch.float64) -> GaussianModel:
    means, quats, scales, opac, sh = random_scene(n, seed=seed, dtype=dtype)
    params = dict(means=means, scales=scales.log(), quats=quats, opacities=torch.logit(opac),
                  sh0=sh[:, :1], shN=sh[:, 1:])
    return GaussianModel(params, sh_degree=3)


def test_weighted_blend_weights_equal_brute_force():
    model = _model(50, seed=4)
    cam = make_camera(40, 28, dtype=torch.float64)
    E = torch.rand(28, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    got = weighted_blend_weights(model, cam, E, backend="torch")
    with torch.no_grad():
        _, _, w = reference_render(model.means, model.quats, model.scales, model.opacities,
                                   torch.zeros(50, 1, dtype=torch.float64), cam, sh_degree=None)
    torch.testing.assert_close(got, (w * E).sum((1, 2)), atol=1e-10, rtol=0)
    unweighted = weighted_blend_weights(model, cam, None, backend="torch")
    torch.testing.assert_close(unweighted, w.sum((1, 2)), atol=1e-10, rtol=0)
    assert (unweighted > 0).sum() > 10
    # Nothing leaks into the model's gradients.
    assert all(p.grad is None for p in model.params.values())


def test_zero_pixel_weights_region():
    model = _model(50, seed=6)
    cam = make_camera(40, 28, dtype=torch.float64)
    E = torch.ones(28, 40, dtype=torch.float64)
    E[:, :20] = 0.0  # left half ignored
    got = weighted_blend_weights(model, cam, E, backend="torch")
    with torch.no_grad():
        _, _, w = reference_render(model.means, model.quats, model.scales, model.opacities,
                                   torch.zeros(50, 1, dtype=torch.float64), cam, sh_degree=None)
    only_left = (w[:, :, :20].sum((1, 2)) > 0) & (w[:, :, 20:].sum((1, 2)) == 0)
    assert only_left.any()
    assert torch.all(got[only_left] == 0)
    right = w[:, :, 20:].sum((1, 2)) > 0
    assert torch.all(got[right] > 0)


def test_summed_over_views_and_opacity_override():
    model = _model(30, seed=8, dtype=torch.float32)
    cams = [make_camera(24, 16), make_camera(24, 16, f=30.0)]
    total = summed_blend_weights(model, cams, backend="torch", progress=False)
    each = sum(weighted_blend_weights(model, c, None, backend="torch") for c in cams)
    torch.testing.assert_close(total, each)
    zero_op = summed_blend_weights(model, cams, backend="torch", progress=False,
                                   opacities=torch.zeros(30))
    assert torch.all(zero_op == 0)
