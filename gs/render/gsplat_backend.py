"""gsplat 1.5 backend (CUDA): ``gsplat.rasterization`` in the original 3DGS configuration.

Settings: ``packed=False``, ``rasterize_mode="classic"``, ``eps2d=0.3`` (the +0.3 px^2
dilation), ``near_plane=0.01``, one camera. gsplat shares the 3DGS conventions we rely on:
quaternions w,x,y,z (normalised inside), SH basis and constants of 3DGS evaluated at
``means - camera centre``, colour ``max(sh + 0.5, 0)``, pixel centres at i + 0.5, the
1/255 skip and the stop before T drops to 1e-4. It differs from the reference in two details:
alpha is clamped at 0.999 (not 0.99), and the screen radius it returns is per axis and
opacity-aware (we report the larger axis, so ``radii > 0`` is the same visibility test).

``means2d``: gsplat's own screen means are (1,N,2); a gradient hook copies their gradient
into the (N,2) tensor returned here, so ``out.means2d.grad`` works as on every backend. With
``absgrad=True`` the AbsGS gradient is copied too, to ``out.means2d.absgrad``.
"""

from __future__ import annotations

import weakref

from typing import Any

import torch

from gs.render.base import BackendUnavailable, Camera, RenderOutput


def _gsplat():
    try:
        import gsplat  # noqa: F401
        from gsplat import rasterization, spherical_harmonics
    except ImportError as exc:  # also covers a broken CUDA extension at import
        raise BackendUnavailable(f"gsplat backend: gsplat is not importable ({exc}); "
                                 "install gsplat>=1.5,<1.6 (pip install 'gs-bench[gpu]')") from exc
    if not torch.cuda.is_available():
        raise BackendUnavailable("gsplat backend: CUDA is not available")
    return rasterization, spherical_harmonics


_rasterization, _spherical_harmonics = _gsplat()  # fail at import so the registry loader reports it unavailable


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
    """Options: ``absgrad`` (bool), ``tile_size`` (16), ``near_plane`` (0.01),
    ``render_depth`` (extras["depth"] (H,W,1): blend-weighted view depth, gsplat "RGB+D")."""
    if means.device.type != "cuda":
        raise BackendUnavailable(f"gsplat backend needs CUDA tensors, got {means.device}")
    if sh_degree is None and colors.dim() != 2:
        raise ValueError(f"with sh_degree=None colors must be (N,D), got {tuple(colors.shape)}")
    if sh_degree is not None and colors.dim() != 3:
        raise ValueError(f"with sh_degree={sh_degree} colors must be SH (N,K,3), got {tuple(colors.shape)}")
    device = means.device
    W, H = int(camera.width), int(camera.height)
    viewmat = camera.viewmat.to(device=device, dtype=torch.float32)[None]
    K = camera.K.to(device)[None]
    absgrad = bool(options.get("absgrad", False))
    render_depth = bool(options.get("render_depth", False))
    D = 3 if sh_degree is not None else colors.shape[1]
    bg = None
    if background is not None:
        bg = background.to(device=device, dtype=torch.float32).reshape(1, -1)
    if sh_degree is not None:
        # SH colours evaluated here rather than by gsplat: gsplat finds the camera centre with
        # torch.inverse, whose error check synchronises the stream every step.
        colors = _spherical_harmonics(sh_degree, means - camera.center.to(device), colors)
        colors = torch.clamp_min(colors + 0.5, 0.0)
    img, alpha, meta = _rasterization(
        means=means,
        quats=quats,
        scales=scales,
        opacities=opacities,
        colors=colors,
        viewmats=viewmat,
        Ks=K,
        width=W,
        height=H,
        near_plane=float(options.get("near_plane", 0.01)),
        eps2d=0.3,
        sh_degree=None,
        packed=False,
        tile_size=int(options.get("tile_size", 16)),
        backgrounds=bg,
        render_mode="RGB+D" if render_depth else "RGB",
        absgrad=absgrad,
        rasterize_mode="classic",
    )
    img, alpha = img[0], alpha[0]  # (H,W,D'), (H,W,1)

    native = meta["means2d"]  # (1,N,2)
    means2d = native.detach()[0].clone()
    if torch.is_grad_enabled() and native.requires_grad:
        means2d.requires_grad_(True)

        # A weak reference: a hook that held ``native`` itself would form a cycle
        # (tensor -> hook -> tensor) that keeps every iteration's autograd graph, and its GPU
        # buffers, alive until Python's cyclic GC happens to run.
        native_ref = weakref.ref(native)

        def _copy_grad(g: torch.Tensor) -> None:
            means2d.grad = g[0].detach().clone() if means2d.grad is None else means2d.grad + g[0].detach()
            src = native_ref()
            if absgrad and src is not None and getattr(src, "absgrad", None) is not None:
                means2d.absgrad = src.absgrad[0].detach()

        native.register_hook(_copy_grad)
    radii = meta["radii"]
    if radii.dim() == 3:  # gsplat >= 1.5: per-axis radii (C,N,2)
        radii = radii.max(dim=-1).values
    radii = radii[0].to(torch.int32)

    extras: dict[str, Any] = {"meta": meta, "depths": meta["depths"][0].detach()}
    if render_depth:
        extras["depth"] = img[..., D:D + 1]
        img = img[..., :D]
    return RenderOutput(
        image=img,
        alpha=alpha,
        means2d=means2d,
        radii=radii,
        grad_to_ndc=camera.ndc_scale.to(device),
        extras=extras,
    )
