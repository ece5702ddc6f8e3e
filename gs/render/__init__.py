"""Rasterizer backends behind one interface (see :mod:`gs.render.base`)."""

from __future__ import annotations

from typing import Any

import torch

from gs.render.base import (
    BackendUnavailable,
    Camera,
    RenderOutput,
    available_backends,
    get_backend,
    register_backend,
    resolve_backend_name,
)


def _load_torch():
    from gs.render.torch_backend import rasterize

    return rasterize


def _load_gsplat():
    from gs.render.gsplat_backend import rasterize

    return rasterize


def _load_inria():
    from gs.render.inria_backend import rasterize

    return rasterize


register_backend("torch", _load_torch)
register_backend("gsplat", _load_gsplat)
register_backend("inria", _load_inria)


def render(
    model,
    camera: Camera,
    *,
    backend: str = "auto",
    sh_degree: int | None = None,
    background: torch.Tensor | None = None,
    opacities: torch.Tensor | None = None,
    **options: Any,
) -> RenderOutput:
    """Render a :class:`gs.model.GaussianModel` from ``camera``.

    ``sh_degree`` defaults to the model's degree (training passes the active degree);
    ``opacities`` overrides the activated opacities (e.g. EDIM's alpha * importance).
    """
    fn = get_backend(backend, model.device)
    return fn(
        model.means,
        model.quats,
        model.scales,
        model.opacities if opacities is None else opacities,
        model.sh,
        camera,
        sh_degree=model.sh_degree if sh_degree is None else sh_degree,
        background=background,
        **options,
    )


__all__ = [
    "BackendUnavailable",
    "Camera",
    "RenderOutput",
    "available_backends",
    "get_backend",
    "register_backend",
    "render",
    "resolve_backend_name",
]
