"""The fused gsplat path (one autograd node) equals ``gsplat.rasterization`` (skipped without CUDA).

Same CUDA kernels with the same inputs, so images, alphas, radii and visibility must be
identical; gradients go through gsplat's atomic adds, whose summation order varies between
runs, so they are compared to float32 round-off.
"""

from __future__ import annotations

import pytest
import torch

from tests.test_gpu_parity import _gsplat_backend, _scene

pytestmark = pytest.mark.gpu


def _render(fn, tensors, cam, weights, *, fused, sh_degree=3, background=True, absgrad=False):
    ins = [t.clone().requires_grad_() for t in tensors]
    bg = torch.tensor([0.1, 0.2, 0.3], device="cuda") if background else None
    out = fn(*ins[:4], ins[4], cam, sh_degree=sh_degree, background=bg, fused=fused, absgrad=absgrad)
    loss = (out.image * weights).sum() + 0.3 * out.alpha.square().sum()
    loss.backward()
    return out, [t.grad for t in ins]


def _close(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    scale = float(b.abs().max()) or 1.0
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale, msg=lambda m: f"{what}: {m}")


@pytest.mark.parametrize("sh_degree", [3, 1, 0])
def test_fused_equals_rasterization_path(sh_degree):
    fn = _gsplat_backend()
    tensors, cam = _scene(4000, seed=3)
    weights = torch.rand(cam.height, cam.width, 3, generator=torch.Generator().manual_seed(2)).cuda()
    ref, gref = _render(fn, tensors, cam, weights, fused=False, sh_degree=sh_degree, absgrad=True)
    out, gout = _render(fn, tensors, cam, weights, fused=True, sh_degree=sh_degree, absgrad=True)
    assert torch.equal(out.image.detach(), ref.image.detach())
    assert torch.equal(out.alpha.detach(), ref.alpha.detach())
    assert torch.equal(out.radii, ref.radii) and out.radii.dtype == ref.radii.dtype
    vis = ref.radii > 0  # gsplat leaves the culled rows of its outputs unwritten (torch.empty)
    assert bool(vis.any()) and not bool(vis.all())
    assert torch.equal(out.means2d.detach()[vis], ref.means2d.detach()[vis])
    assert torch.equal(out.extras["depths"][vis], ref.extras["depths"][vis])
    for name, a, b in zip(["means", "quats", "scales", "opacities", "sh"], gout, gref):
        assert a is not None and b is not None, name
        _close(a, b, name)
    _close(out.means2d.grad, ref.means2d.grad, "means2d")
    _close(out.means2d.absgrad, ref.means2d.absgrad, "means2d absgrad")
    assert float(out.means2d.grad.abs().sum()) > 0


def test_fused_features_path_and_no_grad():
    """sh_degree=None (the per-Gaussian statistics trick) and rendering under no_grad."""
    fn = _gsplat_backend()
    tensors, cam = _scene(2000, seed=4)
    feats = torch.rand(2000, 1, device="cuda")
    weights = torch.rand(cam.height, cam.width, 1, device="cuda")
    outs = []
    for fused in (False, True):
        z = feats.clone().requires_grad_()
        o = fn(*[t.detach() for t in tensors[:4]], z, cam, sh_degree=None, fused=fused)
        (o.image * weights).sum().backward()
        outs.append((o, z.grad))
    (ref, gref), (out, gout) = outs
    assert torch.equal(out.image.detach(), ref.image.detach())
    _close(gout, gref, "features")
    with torch.no_grad():
        a = fn(*tensors[:4], tensors[4], cam, sh_degree=3, fused=True)
        b = fn(*tensors[:4], tensors[4], cam, sh_degree=3, fused=False)
    assert torch.equal(a.image, b.image) and not a.image.requires_grad


def test_fused_grads_accumulate_over_two_backward_passes():
    fn = _gsplat_backend()
    tensors, cam = _scene(1000, seed=5)
    ins = [t.clone().requires_grad_() for t in tensors]
    out = fn(*ins[:4], ins[4], cam, sh_degree=3, fused=True)
    out.image.sum().backward(retain_graph=True)
    first = out.means2d.grad.clone()
    out.image.sum().backward()
    _close(out.means2d.grad, 2 * first, "accumulated means2d")
