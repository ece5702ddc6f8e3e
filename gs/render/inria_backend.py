"""Backend over the original rasterizer, ``diff_gaussian_rasterization`` (graphdeco-inria).

Optional and untested here (it needs the CUDA extension). Conventions mapped onto ours:
- camera: ``world_view_transform = viewmat^T`` and ``full_proj_transform`` from the field of
  view with znear 0.01, zfar 100, exactly as upstream ``getProjectionMatrix``. That rasterizer
  assumes a centred principal point, so a camera with cx, cy off the centre by more than
  half a pixel is refused (ValueError). Its own near-plane cull is z <= 0.2 (hard-coded).
- its screen-space gradient is in NDC units (pixel gradient x 0.5 W, 0.5 H); a gradient hook
  converts it back to pixels on the returned ``means2d`` so ``grad_to_ndc`` means the same on
  every backend. ``means2d`` holds the projected pixel positions (computed here).
- colour channels are fixed at 3 by the compiled extension: per-Gaussian features (N,D) are
  rendered 3 channels at a time. ``alpha`` comes from one extra render with white features
  and no gradient.
"""

from __future__ import annotations

from typing import Any

import torch

from gs.render.base import BackendUnavailable, Camera, RenderOutput

try:
    from diff_gaussian_rasterization import GaussianRasterizationSettings, GaussianRasterizer
except ImportError as exc:
    raise BackendUnavailable(f"inria backend: diff_gaussian_rasterization is not importable ({exc})") from exc
if not torch.cuda.is_available():
    raise BackendUnavailable("inria backend: CUDA is not available")

ZNEAR, ZFAR = 0.01, 100.0


def _projection(tanx: float, tany: float, device) -> torch.Tensor:
    P = torch.zeros(4, 4, device=device)
    P[0, 0] = 1.0 / tanx
    P[1, 1] = 1.0 / tany
    P[3, 2] = 1.0
    P[2, 2] = ZFAR / (ZFAR - ZNEAR)
    P[2, 3] = -(ZFAR * ZNEAR) / (ZFAR - ZNEAR)
    return P


def rasterize(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    colors: torch.Tensor,
    camera: Camera,
    *,
    sh_degree: int | None,
    background: torch.Tensor | None = None,
    **options: Any,
) -> RenderOutput:
    W, H = int(camera.width), int(camera.height)
    if abs(camera.cx - W / 2) > 0.5 or abs(camera.cy - H / 2) > 0.5:
        raise ValueError(f"inria backend: camera '{camera.name}' has principal point ({camera.cx}, "
                         f"{camera.cy}) off the image centre ({W / 2}, {H / 2}); use gsplat or torch")
    device = means.device
    tanx, tany = 0.5 * W / camera.fx, 0.5 * H / camera.fy
    view = camera.viewmat.to(device=device, dtype=torch.float32)
    wv = view.T.contiguous()
    full = (wv @ _projection(tanx, tany, device).T).contiguous()
    campos = torch.linalg.inv(view)[:3, 3]
    D = 3 if sh_degree is not None else colors.shape[1]
    bg = torch.zeros(D, device=device) if background is None else background.to(device, torch.float32)

    def settings(bg3: torch.Tensor) -> Any:
        return GaussianRasterizationSettings(
            image_height=H, image_width=W, tanfovx=tanx, tanfovy=tany, bg=bg3,
            scale_modifier=1.0, viewmatrix=wv, projmatrix=full,
            sh_degree=0 if sh_degree is None else sh_degree, campos=campos,
            prefiltered=False, debug=False,
        )

    native = torch.zeros(means.shape[0], 3, device=device, dtype=means.dtype, requires_grad=True)
    op = opacities.reshape(-1, 1)

    def run(bg3, shs=None, feats=None, screen=native):
        out = GaussianRasterizer(raster_settings=settings(bg3))(
            means3D=means, means2D=screen, shs=shs, colors_precomp=feats, opacities=op,
            scales=scales, rotations=torch.nn.functional.normalize(quats, dim=-1), cov3D_precomp=None)
        return out[0], out[1]  # the 2024 release also returns a depth image

    if sh_degree is not None:
        img, radii = run(bg, shs=colors)
        img = img.permute(1, 2, 0)
    else:
        parts = []
        radii = None
        for c0 in range(0, D, 3):
            f = colors[:, c0:c0 + 3]
            b = bg[c0:c0 + 3]
            k = f.shape[1]
            if k < 3:
                f = torch.cat([f, f.new_zeros(f.shape[0], 3 - k)], 1)
                b = torch.cat([b, b.new_zeros(3 - k)])
            im, r = run(b, feats=f)
            parts.append(im[:k])
            radii = r if radii is None else radii
        img = torch.cat(parts, 0).permute(1, 2, 0)
    with torch.no_grad():
        ones = torch.ones(means.shape[0], 3, device=device)
        screen = torch.zeros(means.shape[0], 3, device=device)
        alpha = run(torch.zeros(3, device=device), feats=ones, screen=screen)[0][:1].permute(1, 2, 0)

    with torch.no_grad():
        pc = means.detach() @ view[:3, :3].T + view[:3, 3]
        z = pc[:, 2].clamp_min(1e-8)
        pix = torch.stack([camera.fx * pc[:, 0] / z + camera.cx, camera.fy * pc[:, 1] / z + camera.cy], -1)
    means2d = pix.clone()
    scale = camera.ndc_scale.to(device)
    if torch.is_grad_enabled():
        means2d.requires_grad_(True)

        def _copy_grad(g: torch.Tensor) -> None:
            gp = g[:, :2].detach() / scale  # NDC-unit gradient back to pixels
            means2d.grad = gp if means2d.grad is None else means2d.grad + gp

        native.register_hook(_copy_grad)
    return RenderOutput(image=img, alpha=alpha, means2d=means2d, radii=radii.to(torch.int32),
                        grad_to_ndc=scale, extras={})
