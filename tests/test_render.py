"""Tests of the SH evaluation and the pure-PyTorch rasterizer against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gs.render import get_backend, render
from gs.render.base import Camera
from gs.render.sh import C0, eval_sh, sh_to_color
from gs.render.torch_backend import rasterize


# --------------------------------------------------------------------------- helpers
def make_camera(W: int = 32, H: int = 24, f: float | None = None, dtype=torch.float32) -> Camera:
    f = float(W) if f is None else f
    return Camera(torch.eye(4, dtype=dtype), fx=f, fy=f, cx=W / 2, cy=H / 2, width=W, height=H)


def random_scene(n: int, seed: int = 0, dtype=torch.float64, scale: float = 0.08, depth: float = 3.0):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=dtype) * torch.tensor([0.5, 0.4, 0.5], dtype=dtype)
    means[:, 2] += depth
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g, dtype=dtype), dim=-1)
    scales = torch.exp(torch.randn(n, 3, generator=g, dtype=dtype) * 0.4) * scale
    opac = torch.rand(n, generator=g, dtype=dtype) * 0.85 + 0.1
    sh = torch.randn(n, 16, 3, generator=g, dtype=dtype) * 0.4
    return means, quats, scales, opac, sh


def reference_render(means, quats, scales, opac, colors, cam, *, sh_degree, background=None):
    """Brute force: every Gaussian at every pixel, written independently of the backend
    (full 3x3 covariances, explicit W and J matrices, a per-pixel sequential-equivalent
    compositing loop over the depth order). Returns image, alpha and the blend weights
    (N, H, W) = T_k * alpha_k."""
    dtype = means.dtype
    W, H = cam.width, cam.height
    V = cam.viewmat.to(dtype)
    Rv, tv = V[:3, :3], V[:3, 3]
    pc = (Rv @ means.T).T + tv
    n = means.shape[0]
    w_, x_, y_, z_ = quats.T
    Rq = torch.stack([
        torch.stack([1 - 2 * (y_ ** 2 + z_ ** 2), 2 * (x_ * y_ - w_ * z_), 2 * (x_ * z_ + w_ * y_)], -1),
        torch.stack([2 * (x_ * y_ + w_ * z_), 1 - 2 * (x_ ** 2 + z_ ** 2), 2 * (y_ * z_ - w_ * x_)], -1),
        torch.stack([2 * (x_ * z_ - w_ * y_), 2 * (y_ * z_ + w_ * x_), 1 - 2 * (x_ ** 2 + y_ ** 2)], -1),
    ], -2)
    S = torch.diag_embed(scales)
    Sigma = Rq @ S @ S @ Rq.transpose(1, 2)
    limx = 1.3 * (0.5 * W / cam.fx)
    limy = 1.3 * (0.5 * H / cam.fy)
    weights = torch.zeros(n, H, W, dtype=dtype)
    if sh_degree is not None:
        feats = sh_to_color(sh_degree, colors, means - cam.center.to(dtype))
    else:
        feats = colors
    order = torch.argsort(pc[:, 2], stable=True)
    ys, xs = torch.meshgrid(torch.arange(H, dtype=dtype) + 0.5, torch.arange(W, dtype=dtype) + 0.5, indexing="ij")
    T = torch.ones(H, W, dtype=dtype)
    done = torch.zeros(H, W, dtype=torch.bool)
    wlist = [None] * n
    for k in order.tolist():
        X, Y, Z = pc[k]
        if Z <= 0.01:
            wlist[k] = torch.zeros(H, W, dtype=dtype)
            continue
        txc = torch.clamp(X / Z, -limx, limx) * Z
        tyc = torch.clamp(Y / Z, -limy, limy) * Z
        J = torch.stack([
            torch.stack([cam.fx / Z, torch.zeros((), dtype=dtype), -cam.fx * txc / Z ** 2]),
            torch.stack([torch.zeros((), dtype=dtype), cam.fy / Z, -cam.fy * tyc / Z ** 2]),
        ])
        cov = J @ Rv @ Sigma[k] @ Rv.T @ J.T + 0.3 * torch.eye(2, dtype=dtype)
        inv = torch.linalg.inv(cov)
        u = cam.fx * X / Z + cam.cx
        v = cam.fy * Y / Z + cam.cy
        dx, dy = xs - u, ys - v
        q = inv[0, 0] * dx * dx + 2 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy
        a = torch.clamp(opac[k] * torch.exp(-0.5 * q), max=0.99)
        a = torch.where(a >= 1 / 255, a, torch.zeros_like(a))
        t_next = T * (1 - a)
        stop = (t_next < 1e-4) & (a > 0)
        done = done | stop
        a = torch.where(done, torch.zeros_like(a), a)
        wlist[k] = T * a
        T = T * (1 - a)
    weights = torch.stack(wlist)
    image = torch.einsum("nhw,nd->hwd", weights, feats)
    alpha = weights.sum(0)[..., None]
    if background is not None:
        image = image + (1 - alpha) * background.to(dtype)
    return image, alpha, weights


# --------------------------------------------------------------------------- SH
def _real_sh_scipy(l: int, m: int, dirs: np.ndarray) -> np.ndarray:
    """3DGS basis from scipy's complex SH (Condon-Shortley phase included, as in 3DGS)."""
    import scipy.special as sps

    theta = np.arccos(np.clip(dirs[:, 2], -1, 1))  # polar
    phi = np.arctan2(dirs[:, 1], dirs[:, 0])  # azimuth
    am = abs(m)
    if hasattr(sps, "sph_harm_y"):
        Y = sps.sph_harm_y(l, am, theta, phi)
    else:  # older scipy: sph_harm(m, l, azimuth, polar)
        Y = sps.sph_harm(am, l, phi, theta)
    if m == 0:
        return Y.real
    return math.sqrt(2) * (Y.imag if m < 0 else Y.real)


def test_sh_basis_matches_scipy():
    g = torch.Generator().manual_seed(1)
    dirs = torch.nn.functional.normalize(torch.randn(7, 3, generator=g, dtype=torch.float64), dim=-1)
    for l in range(4):
        for m in range(-l, l + 1):
            k = l * l + l + m
            sh = torch.zeros(7, 16, 1, dtype=torch.float64)
            sh[:, k, 0] = 1.0
            ours = eval_sh(3, sh, dirs)[:, 0].numpy()
            np.testing.assert_allclose(ours, _real_sh_scipy(l, m, dirs.numpy()), atol=1e-10,
                                       err_msg=f"l={l} m={m}")


def test_sh_degree_uses_first_bases_and_direct_formula():
    dirs = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]], dtype=torch.float64)
    sh = torch.randn(3, 16, 3, dtype=torch.float64)
    # Degree 1 by hand: C0 f0 - C1 y f1 + C1 z f2 - C1 x f3.
    C1 = 0.4886025119029199
    x, y, z = dirs.T
    direct = C0 * sh[:, 0] - C1 * y[:, None] * sh[:, 1] + C1 * z[:, None] * sh[:, 2] - C1 * x[:, None] * sh[:, 3]
    torch.testing.assert_close(eval_sh(1, sh, dirs), direct)
    torch.testing.assert_close(eval_sh(0, sh, dirs), C0 * sh[:, 0])
    # Colour clamps at 0 after +0.5.
    neg = torch.full((1, 1, 3), -10.0, dtype=torch.float64)
    assert torch.all(sh_to_color(0, neg, dirs[:1]) == 0)


# --------------------------------------------------------------------------- torch renderer
def test_single_gaussian_peak():
    cam = make_camera(32, 32)
    means = torch.tensor([[0.0, 0.0, 2.0]])
    quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    scales = torch.full((1, 3), 0.05)
    opac = torch.tensor([0.7])
    rgb = torch.tensor([[0.2, 0.6, 0.9]])
    sh = ((rgb - 0.5) / C0)[:, None, :]
    out = rasterize(means, quats, scales, opac, sh, cam, sh_degree=0)
    assert out.image.shape == (32, 32, 3) and out.alpha.shape == (32, 32, 1)
    # The mean projects to (16, 16): a pixel corner; the 4 pixels around share the peak value.
    s2 = (32 * 0.05 / 2.0) ** 2 + 0.3
    a_peak = 0.7 * math.exp(-0.5 * 0.5 / s2)  # d = (0.5, 0.5)
    torch.testing.assert_close(out.alpha[15:17, 15:17, 0], torch.full((2, 2), a_peak), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.image[16, 16], rgb[0] * a_peak, atol=1e-5, rtol=0)
    # Upstream floors the eigenvalue gap at sqrt(0.1): lambda1 = mid + sqrt(max(0.1, mid^2 - det)).
    assert out.radii[0] == math.ceil(3 * math.sqrt(s2 + math.sqrt(0.1)))
    torch.testing.assert_close(out.means2d.detach(), torch.tensor([[16.0, 16.0]]))


def test_occlusion_front_dominates_and_background():
    cam = make_camera(16, 16)
    means = torch.tensor([[0.0, 0.0, 3.0], [0.0, 0.0, 2.0]])  # second one is in front
    quats = torch.tensor([[1.0, 0, 0, 0]] * 2)
    scales = torch.full((2, 3), 0.3)
    opac = torch.tensor([0.98, 0.98])
    colors = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    bg = torch.tensor([0.0, 0.0, 1.0])
    out = rasterize(means, quats, scales, opac, colors, cam, sh_degree=None, background=bg)
    c = out.image[8, 8]
    assert c[1] > 0.9 and c[0] < 0.1 and c[1] > 10 * c[0]
    # Swapping the depths swaps the dominant colour.
    out2 = rasterize(means[[1, 0]], quats, scales, opac, colors, cam, sh_degree=None, background=bg)
    assert out2.image[8, 8, 0] > 0.9
    # Background fills what is left: colour + (1 - alpha) * bg.
    torch.testing.assert_close(out.image[..., 2], (1 - out.alpha[..., 0]) * 1.0)
    # Nothing in view -> pure background, alpha 0, radii 0.
    out3 = rasterize(means + torch.tensor([0, 0, -10.0]), quats, scales, opac, colors, cam,
                     sh_degree=None, background=bg)
    torch.testing.assert_close(out3.image, bg.expand(16, 16, 3))
    assert out3.alpha.abs().max() == 0 and (out3.radii == 0).all()


@pytest.mark.parametrize("sh_degree", [None, 0, 3])
def test_tiles_equal_brute_force(sh_degree):
    cam = make_camera(40, 28, dtype=torch.float64)
    means, quats, scales, opac, sh = random_scene(60, seed=3)
    colors = sh if sh_degree is not None else torch.rand(60, 5, dtype=torch.float64)
    bg = torch.rand(colors.shape[-1], dtype=torch.float64)
    out = rasterize(means, quats, scales, opac, colors, cam, sh_degree=sh_degree, background=bg)
    ref_img, ref_alpha, _ = reference_render(means, quats, scales, opac, colors, cam,
                                             sh_degree=sh_degree, background=bg)
    torch.testing.assert_close(out.image, ref_img, atol=1e-10, rtol=0)
    torch.testing.assert_close(out.alpha, ref_alpha, atol=1e-10, rtol=0)


def test_tiles_equal_brute_force_opaque_and_saturated():
    # Many opaque, large Gaussians: exercises the T < 1e-4 stop and the 0.99 clamp.
    cam = make_camera(24, 20, dtype=torch.float64)
    means, quats, scales, opac, _ = random_scene(40, seed=5, scale=0.3)
    opac = torch.full_like(opac, 0.999)
    colors = torch.rand(40, 3, dtype=torch.float64)
    out = rasterize(means, quats, scales, opac, colors, cam, sh_degree=None)
    ref_img, ref_alpha, _ = reference_render(means, quats, scales, opac, colors, cam, sh_degree=None)
    assert (ref_alpha > 1 - 1e-3).float().mean() > 0.3  # the stop rule is exercised
    torch.testing.assert_close(out.image, ref_img, atol=1e-10, rtol=0)
    torch.testing.assert_close(out.alpha, ref_alpha, atol=1e-10, rtol=0)


def test_tile_size_does_not_change_image():
    cam = make_camera(50, 30)
    means, quats, scales, opac, sh = (t.float() for t in random_scene(200, seed=7))
    a = rasterize(means, quats, scales, opac, sh, cam, sh_degree=2)
    b = rasterize(means, quats, scales, opac, sh, cam, sh_degree=2, tile_size=8, chunk_elements=4096)
    torch.testing.assert_close(a.image, b.image, atol=1e-6, rtol=0)


def test_culling_radius_zero():
    cam = make_camera(32, 24)
    means = torch.tensor([
        [0.0, 0.0, 2.0],      # visible
        [0.0, 0.0, -2.0],     # behind the camera
        [0.0, 0.0, 0.005],    # in front of the near plane
        [50.0, 0.0, 2.0],     # far off-screen
        [0.0, 0.0, 3.0],      # visible but too transparent to ever reach alpha 1/255
    ])
    n = means.shape[0]
    quats = torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1)
    scales = torch.full((n, 3), 0.05)
    opac = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.001])
    out = rasterize(means, quats, scales, opac, torch.rand(n, 3), cam, sh_degree=None)
    assert out.radii.tolist()[0] > 0
    assert out.radii.tolist()[1:] == [0, 0, 0, 0]
    assert out.radii.dtype in (torch.int32, torch.int64)
    assert out.visible.tolist() == [True, False, False, False, False]


def test_means2d_grad_populated_and_ndc_factor():
    cam = make_camera(32, 24)
    means, quats, scales, opac, sh = (t.float().requires_grad_() for t in random_scene(30, seed=2))
    out = rasterize(means, quats, scales, opac, sh, cam, sh_degree=3, background=torch.zeros(3))
    out.image.sum().backward()
    g = out.means2d.grad
    assert g is not None and g.shape == (30, 2)
    vis = out.radii > 0
    assert g[vis].abs().sum() > 0
    assert torch.all(g[~vis] == 0)
    torch.testing.assert_close(out.grad_to_ndc, torch.tensor([16.0, 12.0]))
    assert out.ndc_grad_norm().shape == (30,)


def test_gradients_match_finite_differences():
    cam = make_camera(16, 16, dtype=torch.float64)
    means, quats, scales, opac, sh = random_scene(4, seed=11, scale=0.15)
    log_scales = scales.log()
    # Smooth region: no Gaussian straddles the 1/255 cut-off strongly enough to matter for
    # tiny steps; double precision keeps the difference quotients clean.
    wts = torch.rand(16, 16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def f(m, q, ls, o, s):
        out = rasterize(m, torch.nn.functional.normalize(q, dim=-1), ls.exp(), o, s, cam,
                        sh_degree=2, background=torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64))
        return (out.image * wts).sum()

    inputs = tuple(t.clone().requires_grad_() for t in (means, quats, log_scales, opac, sh))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-7, atol=1e-5, rtol=1e-4, nondet_tol=0.0)


def test_registry_and_render_wrapper():
    from gs.model import GaussianModel

    fn = get_backend("torch")
    assert fn is rasterize
    assert get_backend("auto", "cpu") is rasterize
    pts = np.random.default_rng(0).normal(size=(50, 3)) * 0.3 + np.array([0, 0, 3.0])
    model = GaussianModel.from_points(pts, np.random.default_rng(1).random((50, 3)), sh_degree=1)
    out = render(model, make_camera(24, 16), backend="torch", background=torch.ones(3))
    assert out.image.shape == (16, 24, 3)
    out.image.mean().backward()
    assert model.params["means"].grad is not None


def test_fused_backward_matches_autograd_path():
    cam = make_camera(40, 28)
    base = [t.float() for t in random_scene(120, seed=13, scale=0.12)]
    wts = torch.rand(28, 40, 3, generator=torch.Generator().manual_seed(1))
    grads, images = [], []
    for fused in (True, False):
        ins = [t.clone().requires_grad_() for t in base]
        out = rasterize(*ins[:4], ins[4], cam, sh_degree=3, background=torch.tensor([0.3, 0.2, 0.1]),
                        fused=fused)
        ((out.image * wts).sum() + out.alpha.sum()).backward()
        images.append(out.image.detach())
        grads.append([t.grad for t in ins] + [out.means2d.grad])
    torch.testing.assert_close(images[0], images[1], atol=2e-5, rtol=0)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)
