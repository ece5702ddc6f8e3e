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

**One fused autograd node.** On scenes this small a training step is bound by host overhead
(see ``gs/train/loss.py``), and ``gsplat.rasterization`` spends it: a dozen shape asserts,
broadcasts and ``.contiguous()`` calls, and four autograd nodes (SH, clamp, projection,
rasterization) plus ours (camera offset, image/alpha selection), each with its Python
``backward``. :class:`_FusedSplat` calls the same gsplat CUDA entry points
(``projection_ewa_3dgs_fused``, ``spherical_harmonics``, ``intersect_tile``/``intersect_offset``,
``rasterize_to_pixels_3dgs``), with the same arguments ``rasterization`` passes in the
configuration above, from one ``autograd.Function``; its backward chains their backward
kernels. Same kernels, same inputs: the images and gradients are bit-identical to the
``rasterization`` path, which ``tests/test_gpu_fused.py`` checks on the device.
``fused=False`` (option) or ``GS_GSPLAT_FUSED=0`` (environment) use ``gsplat.rasterization``;
the depth render and feature widths gsplat's kernels do not instantiate always do.
"""

from __future__ import annotations

import math
import os
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
    _load_cuda_extension()
    return rasterization, spherical_harmonics


def _load_cuda_extension() -> None:
    """Load gsplat's CUDA library now, compiling it on the first use on this machine, behind a
    machine-wide lock so that jobs starting together compile it once (gs.render.extension_build)."""
    from gs.render.extension_build import load_once, torch_extensions_root

    def load():
        from gsplat.cuda._backend import _C

        return _C

    try:
        lib = load_once(load, torch_extensions_root() / "gsplat_cuda.gs-bench.lock",
                        what="gsplat CUDA extension")
    except Exception as exc:  # a failed compile: name it, and let `auto` fall back
        raise BackendUnavailable(f"gsplat backend: its CUDA extension failed to build or load "
                                 f"({type(exc).__name__}: {exc})") from exc
    if lib is None:
        raise BackendUnavailable("gsplat backend: no prebuilt CUDA extension and no CUDA toolkit "
                                 "(nvcc) to compile one; install the CUDA toolkit")


_rasterization, _spherical_harmonics = _gsplat()  # fail at import so the registry loader reports it unavailable

#: feature widths gsplat 1.5's rasterization kernels are instantiated for (others get padded)
_CHANNELS = frozenset((1, 2, 3, 4, 5, 8, 9, 16, 17, 32, 33, 64, 65, 128, 129, 256, 257, 512, 513))
_FUSED_DEFAULT = os.environ.get("GS_GSPLAT_FUSED", "1") != "0"
_FAR_PLANE = 1e10  # gsplat's default; 3DGS has no far plane


def _cuda_ops():
    from gsplat.cuda._backend import _C

    return _C


class _Sink:
    """Where :class:`_FusedSplat` leaves its non-differentiable outputs, and where its backward
    writes the screen-mean gradients (``means2d.grad`` / ``.absgrad``) for densification."""

    __slots__ = ("radii", "depths", "means2d")


class _FusedSplat(torch.autograd.Function):
    """means, quats (raw), scales, opacities, colours (SH (N,K,3) or features (N,D)) -> image
    (H,W,D), alpha (H,W,1); one camera. The calls mirror ``gsplat.rasterization`` (packed=False,
    classic, RGB) and its ``_FullyFusedProjection``, ``_SphericalHarmonics`` and
    ``_RasterizeToPixels`` functions, argument for argument."""

    @staticmethod
    def forward(ctx, means, quats, scales, opacities, colors, viewmats, Ks, campos, background,
                cfg, sink):
        C = _cuda_ops()
        width, height, tile, near, eps2d, sh_degree, absgrad = cfg
        pinhole = C.CameraModelType.PINHOLE
        radii, means2d, depths, conics, _ = C.projection_ewa_3dgs_fused_fwd(
            means, None, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near,
            _FAR_PLANE, 0.0, False, pinhole)
        if sh_degree is not None:
            dirs = means - campos
            unclamped = C.spherical_harmonics_fwd(sh_degree, dirs, colors, None) + 0.5
            feats = torch.clamp_min(unclamped, 0.0)
        else:
            dirs = unclamped = None
            feats = colors
        tiles_w, tiles_h = math.ceil(width / tile), math.ceil(height / tile)
        _, isect_ids, flatten_ids = C.intersect_tile(means2d, radii, depths, None, None, 1, tile,
                                                     tiles_w, tiles_h, True, False)
        offsets = C.intersect_offset(isect_ids, 1, tiles_w, tiles_h).reshape(1, tiles_h, tiles_w)
        feats1, opac1 = feats[None], opacities[None]
        image, alpha, last_ids = C.rasterize_to_pixels_3dgs_fwd(
            means2d, conics, feats1, opac1, background, None, width, height, tile, offsets, flatten_ids)
        alpha = alpha.float()
        ctx.save_for_backward(means, quats, scales, viewmats, Ks, radii, conics, means2d, feats1, opac1,
                              background, offsets, flatten_ids, alpha, last_ids, dirs, colors, unclamped)
        ctx.cfg, ctx.sink, ctx.pinhole = cfg, sink, pinhole
        sink.radii, sink.depths = radii, depths
        sink.means2d = means2d.detach()[0]
        return image[0], alpha[0]

    @staticmethod
    def backward(ctx, v_image, v_alpha):
        C = _cuda_ops()
        (means, quats, scales, viewmats, Ks, radii, conics, means2d, feats1, opac1, background, offsets,
         flatten_ids, alpha, last_ids, dirs, colors, unclamped) = ctx.saved_tensors
        width, height, tile, _, eps2d, sh_degree, absgrad = ctx.cfg
        v_abs, v_means2d, v_conics, v_feats, v_opac = C.rasterize_to_pixels_3dgs_bwd(
            means2d, conics, feats1, opac1, background, None, width, height, tile, offsets, flatten_ids,
            alpha, last_ids, v_image[None].contiguous(), v_alpha[None].contiguous(), absgrad)
        sink = ctx.sink
        held = sink.means2d
        if held.requires_grad:
            g = v_means2d[0]
            held.grad = g if held.grad is None else held.grad + g
            if absgrad:
                held.absgrad = v_abs[0]
        v_feats = v_feats[0]
        need_means = ctx.needs_input_grad[0]
        v_dirs = None
        if sh_degree is not None:
            # clamp_min's backward passes the gradient where its input is >= the bound
            v_sh = torch.where(unclamped >= 0.0, v_feats, 0.0)
            v_colors, v_dirs = C.spherical_harmonics_bwd(colors.shape[-2], sh_degree, dirs, colors, None,
                                                         v_sh, need_means)
        else:
            v_colors = v_feats
        v_means, _, v_quats, v_scales, _ = C.projection_ewa_3dgs_fused_bwd(
            means, None, quats, scales, viewmats, Ks, width, height, eps2d, ctx.pinhole, radii, conics,
            None, v_means2d, torch.zeros(radii.shape[:-1], device=radii.device, dtype=v_means2d.dtype),
            v_conics, None, False)
        if v_dirs is not None:
            v_means = v_means + v_dirs
        need = ctx.needs_input_grad
        return (v_means if need_means else None, v_quats if need[1] else None,
                v_scales if need[2] else None, v_opac[0] if need[3] else None,
                v_colors if need[4] else None, None, None, None, None, None, None)


def _fused_rasterize(means, quats, scales, opacities, colors, viewmat, K, campos, bg, *, width, height,
                     sh_degree, tile_size, near_plane, absgrad):
    sink = _Sink()
    cfg = (width, height, tile_size, near_plane, 0.3, sh_degree, absgrad)
    image, alpha = _FusedSplat.apply(means.contiguous(), quats.contiguous(), scales.contiguous(),
                                     opacities.contiguous(), colors.contiguous(), viewmat, K, campos, bg,
                                     cfg, sink)
    means2d = sink.means2d
    if torch.is_grad_enabled() and image.requires_grad:
        means2d.requires_grad_(True)
    return image, alpha, means2d, sink.radii, sink.depths


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
    ``render_depth`` (extras["depth"] (H,W,1): blend-weighted view depth, gsplat "RGB+D"),
    ``fused`` (default True unless ``GS_GSPLAT_FUSED=0``: one autograd node, see the module
    docstring)."""
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
    fused = bool(options.get("fused", _FUSED_DEFAULT)) and not render_depth and D in _CHANNELS
    fused = fused and means.shape[0] > 0 and (bg is None or not bg.requires_grad)
    if fused:
        img, alpha, means2d, radii, depths = _fused_rasterize(
            means, quats, scales, opacities, colors, viewmat, K, camera.center.to(device), bg,
            width=W, height=H, sh_degree=sh_degree, tile_size=int(options.get("tile_size", 16)),
            near_plane=float(options.get("near_plane", 0.01)), absgrad=absgrad)
        return RenderOutput(image=img, alpha=alpha, means2d=means2d, radii=radii.max(dim=-1).values[0],
                            grad_to_ndc=camera.ndc_scale.to(device), extras={"depths": depths[0].detach()})
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
