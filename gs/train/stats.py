"""Per-Gaussian statistics that methods need, computed once here for every backend.

The gradient trick: render with per-Gaussian "colours" set to a zero leaf tensor ``z`` (N,D)
that requires grad, black background and no SH. The image is then
``out(p) = sum_k T_k(p) alpha_k(p) z_k``, linear in ``z``, so for pixel weights E(p)

    d/dz_k sum_p E(p) out(p) = sum_p E(p) T_k(p) alpha_k(p)

is the per-Gaussian E-weighted sum of blend weights, read from ``z.grad`` after one backward,
on any differentiable backend (torch, gsplat, inria) and without touching its kernels. The
other parameters are detached, so no model gradient is produced or disturbed.

Statistics that need per-pixel quantities a backward pass cannot give (e.g. ARGP's recovery
score, which squares per-pixel gradients before summing) belong here too, next to these.
"""

from __future__ import annotations

from typing import Iterable

import torch

from gs.render import get_backend
from gs.render.base import Camera, RenderOutput


def _detached_inputs(model, opacities: torch.Tensor | None):
    """Activated model parameters without autograd history (the statistic is w.r.t. z only)."""
    with torch.no_grad():
        means = model.means.detach()
        quats = model.quats.detach()
        scales = model.scales.detach()
        opac = (model.opacities if opacities is None else opacities).detach()
    return means, quats, scales, opac


def render_features(
    model,
    camera: Camera,
    features: torch.Tensor,
    *,
    backend: str,
    opacities: torch.Tensor | None = None,
    **options,
) -> RenderOutput:
    """Render per-Gaussian ``features`` (N,D) (no SH, black background) with the model's
    geometry and opacities (or ``opacities``) detached; gradients flow only to ``features``."""
    means, quats, scales, opac = _detached_inputs(model, opacities)
    fn = get_backend(backend, means.device)
    return fn(means, quats, scales, opac, features, camera.to(means.device), sh_degree=None,
              background=None, **options)


def weighted_blend_weights(
    model,
    camera: Camera,
    pixel_weights: torch.Tensor | None,
    *,
    backend: str,
    opacities: torch.Tensor | None = None,
) -> torch.Tensor:
    """(N,) sum over pixels p of E(p) T_k(p) alpha_k(p) for one view; E = ``pixel_weights``
    (H,W) or 1 everywhere when None (plain summed blend weight)."""
    n = model.num_gaussians
    device = model.device
    dtype = model.means.dtype
    z = torch.zeros(n, 1, device=device, dtype=dtype, requires_grad=True)
    with torch.enable_grad():
        out = render_features(model, camera, z, backend=backend, opacities=opacities)
        img = out.image[..., 0]
        if pixel_weights is None:
            target = img.sum()
        else:
            e = pixel_weights.to(device=device, dtype=img.dtype)
            if e.shape != img.shape:
                raise ValueError(f"pixel_weights shape {tuple(e.shape)} != image shape {tuple(img.shape)}")
            target = (img * e).sum()
        grad = torch.autograd.grad(target, z, allow_unused=True)[0] if target.requires_grad else None
    if grad is None:
        return torch.zeros(n, device=device, dtype=dtype)
    return grad[:, 0].detach()


def summed_blend_weights(
    model,
    cameras: Iterable[Camera],
    *,
    backend: str,
    opacities: torch.Tensor | None = None,
    pixel_weights: Iterable[torch.Tensor | None] | None = None,
    progress: bool = True,
    desc: str = "blend weights",
) -> torch.Tensor:
    """(N,) blend weights summed over every pixel of every view (optionally weighted per view
    by ``pixel_weights``, one (H,W) map or None per camera)."""
    from tqdm.auto import tqdm

    cameras = list(cameras)
    weights = [None] * len(cameras) if pixel_weights is None else list(pixel_weights)
    if len(weights) != len(cameras):
        raise ValueError(f"{len(weights)} pixel weight maps for {len(cameras)} cameras")
    total = torch.zeros(model.num_gaussians, device=model.device, dtype=model.means.dtype)
    for cam, e in tqdm(list(zip(cameras, weights)), desc=desc, disable=not progress, leave=False):
        total += weighted_blend_weights(model, cam, e, backend=backend, opacities=opacities)
    return total


# ---------------------------------------------------------------------------- ARGP recovery
# (added by the ARGP implementation; see gs/methods/argp.py and methods/argp.md)
#
# S_k = sum_views sum_p alpha_k(p) (dL/dalpha_k(p))^2 with L = sum of the clamped image.
# The square is taken per pixel, before summing, so one backward pass (which sums the signed
# per-pixel terms first) cannot produce it on any backend. Upstream ARGP changes the CUDA
# backward kernel; here it is computed in closed form from the per-pixel compositing lists
# that the pure-PyTorch renderer's tile machinery exposes (``iter_tile_chunks``), on whatever
# device the model lives (CPU or CUDA), whichever backend trains the model. Nothing is asked
# of gsplat: its per-pixel lists would differ only by its 0.999 alpha clamp and 3-sigma tile
# binning, which do not matter for a ranking score.
#
# For a pixel with front-to-back contributors alpha_1..alpha_K, T_k = prod_{j<k}(1 - alpha_j),
# colour C = sum_k c_k alpha_k T_k + T_final bg, the derivative per channel is
#     dC/dalpha_k = c_k T_k - (A_{>k} + T_final bg) / (1 - alpha_k),
#     A_{>k} = sum_{j>k} c_j alpha_j T_j   (what is composited behind k),
# and dL/dC = 1 where 0 <= C <= 1 (torch's clamp passes the gradient on the closed interval),
# 0 where the image saturates. As upstream's kernel, the multiplier alpha_k(p) is o_k G_k(p)
# before the 0.99 clamp, while dL/dalpha uses the composited (clamped) alphas.


def recovery_alpha_grad(
    alpha: torch.Tensor,
    trans: torch.Tensor,
    colors: torch.Tensor,
    background: torch.Tensor | None = None,
    pixel_valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """dL/dalpha_k(p) for L = sum over pixels and channels of clamp(C, 0, 1), in closed form.

    ``alpha``, ``trans`` (C,L,P): composited alphas (0 = not contributing) and transmittance
    in front of each list entry, lists in front-to-back order along dim 1; ``colors`` (C,L,D)
    per-entry colour; ``background`` (D,) or None (black); ``pixel_valid`` (C,P) bool mask of
    the pixels that belong to the image (None = all). Returns (C,L,P)."""
    w = alpha * trans  # blend weights (C,L,P)
    wc = w[..., None] * colors[:, :, None, :]  # (C,L,P,D)
    # A_{>k}: exclusive suffix sums along the list (no subtraction of large sums)
    suffix = torch.flip(torch.cumsum(torch.flip(wc, [1]), 1), [1])
    behind = torch.cat([suffix[:, 1:], torch.zeros_like(suffix[:, :1])], dim=1)
    t_final = trans[:, -1] * (1.0 - alpha[:, -1])  # (C,P)
    pixel = suffix[:, 0]  # (C,P,D)
    if background is not None:
        bg_term = t_final[..., None] * background.to(dtype=pixel.dtype, device=pixel.device)
        pixel = pixel + bg_term
        behind = behind + bg_term[:, None]
    dC = colors[:, :, None, :] * trans[..., None] - behind / (1.0 - alpha)[..., None]
    dL_dC = ((pixel >= 0) & (pixel <= 1)).to(dC.dtype)  # (C,P,D)
    if pixel_valid is not None:
        dL_dC = dL_dC * pixel_valid[..., None].to(dC.dtype)
    return (dC * dL_dC[:, None]).sum(-1)


#: list entries x pixels per batch of the recovery score on CUDA, 16x the torch renderer's CPU
#: default (ARGP's peak GPU memory on beer_can went from 1.25 to 2.72 GB with it)
SCORE_CHUNK_ELEMENTS_CUDA = 1 << 24


def recovery_score_view(
    model,
    camera: Camera,
    *,
    sh_degree: int | None = None,
    background: torch.Tensor | None = None,
    opacities: torch.Tensor | None = None,
    tile_size: int | None = None,
    chunk_elements: int | None = None,
) -> torch.Tensor:
    """(N,) ARGP recovery score of one view: sum_p alpha_k(p) (dL/dalpha_k(p))^2 (see above)."""
    from gs.render import torch_backend as tb

    tile_size = tb.TILE if tile_size is None else int(tile_size)
    if chunk_elements is None:
        # per-list-entry work is tiny, so on a GPU the pass is bound by the number of batches
        chunk_elements = SCORE_CHUNK_ELEMENTS_CUDA if model.means.is_cuda else tb.CHUNK_ELEMENTS
    chunk_elements = int(chunk_elements)
    n = model.num_gaussians
    with torch.no_grad():
        means, quats, scales, opac = _detached_inputs(model, opacities)
        sh = model.sh.detach()
        deg = model.sh_degree if sh_degree is None else int(sh_degree)
        cam = camera.to(means.device)
        W, H = int(cam.width), int(cam.height)
        score = torch.zeros(n, device=means.device, dtype=means.dtype)
        proj = tb.project(means, quats, scales, opac, cam, tile_size=tile_size)
        ids = torch.nonzero(proj.rendered).squeeze(1)
        if ids.numel() == 0:
            return score
        colors = torch.zeros(n, 3, device=means.device, dtype=means.dtype)
        colors[ids] = tb._features(means, sh, cam, deg, ids)
        bg = None if background is None else background.to(device=means.device, dtype=means.dtype)
        bins = tb.bin_tiles(proj, W, H, tile_size)
        for ch in tb.iter_tile_chunks(proj, opac, bins, W, H, tile_size=tile_size,
                                      chunk_elements=chunk_elements):
            g = ch.gauss.clamp_min(0)  # (C,L)
            valid = ch.pixels >= 0  # (C,P)
            dL = recovery_alpha_grad(ch.alpha, ch.trans, colors[g], bg, valid)
            # o G before the 0.99 clamp (differs from the composited alpha only where clamped)
            pix = ch.pixels.clamp_min(0)
            px = (pix % W).to(means.dtype) + 0.5
            py = torch.div(pix, W, rounding_mode="floor").to(means.dtype) + 0.5
            mean, con = proj.means2d[g], proj.conics[g]  # (C,L,2), (C,L,3)
            dx = px[:, None, :] - mean[..., 0:1]
            dy = py[:, None, :] - mean[..., 1:2]
            sigma = 0.5 * (con[..., 0:1] * dx * dx + con[..., 2:3] * dy * dy) + con[..., 1:2] * dx * dy
            a_raw = opac[g][..., None] * torch.exp(-sigma)
            a_mult = torch.where(ch.alpha >= tb.ALPHA_MAX, a_raw, ch.alpha)
            a_mult = torch.where((ch.alpha > 0) & valid[:, None, :], a_mult, torch.zeros_like(a_mult))
            per = (a_mult * dL * dL).sum(-1)  # (C,L)
            score.index_add_(0, g.reshape(-1), per.reshape(-1))
    return score


def recovery_score(
    model,
    cameras: Iterable[Camera],
    *,
    sh_degree: int | None = None,
    background: torch.Tensor | None = None,
    opacities: torch.Tensor | None = None,
    progress: bool = False,
    desc: str = "recovery score",
    **options,
) -> torch.Tensor:
    """(N,) ARGP recovery score summed over ``cameras`` (upstream: every training view).
    ``background`` None = black. Independent of the training backend (see the section
    comment above); ``options``: ``tile_size``, ``chunk_elements``."""
    from tqdm.auto import tqdm

    cameras = list(cameras)
    total = torch.zeros(model.num_gaussians, device=model.device, dtype=model.means.dtype)
    for cam in tqdm(cameras, desc=desc, disable=not progress, leave=False):
        total += recovery_score_view(model, cam, sh_degree=sh_degree, background=background,
                                     opacities=opacities, **options)
    return total
