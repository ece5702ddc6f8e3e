"""The one rasterizer interface every backend implements.

A backend is a function with the shape of :func:`Rasterize`:

    rasterize(means, quats, scales, opacities, colors, camera, *, sh_degree, background,
              **options) -> RenderOutput

- ``means`` (N,3) world positions; ``quats`` (N,4) w,x,y,z, normalised by the backend (the
  trainer passes the raw parameter, which saves an autograd normalisation per step); ``scales`` (N,3)
  activated (not log); ``opacities`` (N,) activated in (0,1).
- ``colors``: SH coefficients (N,K,3) when ``sh_degree`` is an int (only the first
  (sh_degree+1)^2 bases are used), or precomputed per-Gaussian features (N,D), any D, when
  ``sh_degree`` is None (used by the per-Gaussian statistics tricks: render "colour" = a
  per-Gaussian quantity and read sums per pixel).
- ``background``: (D,) tensor or None (black).

It follows the original 3DGS image formation: alpha = min(0.99, o * exp(-0.5 d^T S^-1 d)),
skip alpha < 1/255, stop once transmittance < 1e-4, +0.3 px^2 dilation of the 2D covariance,
SH colour = max(eval + 0.5, 0) (the clamp is applied only for SH input), near plane 0.01.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch

from gs.camera import Camera  # the shared camera (below data and render); backends take it from here


@dataclass
class RenderOutput:
    """What every backend returns, in one shape.

    image: (H,W,D) float; alpha: (H,W,1); means2d: (N,2) screen positions in pixels, a
    tensor whose ``.grad`` is filled by backward (call ``retain_grad`` is done by the
    backend); radii: (N,) int screen radius in pixels, 0 = culled; ``grad_to_ndc``: (2,)
    factor that turns a means2d pixel gradient into the NDC units of the original code
    (0.5*W, 0.5*H) so the 2e-4 densification threshold means the same on every backend.
    ``extras``: optional backend-native outputs (e.g. depth).
    """

    image: torch.Tensor
    alpha: torch.Tensor
    means2d: torch.Tensor
    radii: torch.Tensor
    grad_to_ndc: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def visible(self) -> torch.Tensor:
        return self.radii > 0

    def ndc_grad_norm(self) -> torch.Tensor:
        """||dL/d mean2d|| in NDC units, per Gaussian (0 where no gradient)."""
        g = self.means2d.grad
        if g is None:
            return torch.zeros(self.means2d.shape[0], device=self.means2d.device)
        return (g * self.grad_to_ndc.to(g.device)).norm(dim=-1)


class Rasterize(Protocol):
    def __call__(
        self,
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
    ) -> RenderOutput: ...


class BackendUnavailable(RuntimeError):
    """The requested rasterizer backend cannot run here (missing package or no CUDA)."""


_BACKENDS: dict[str, Callable[[], Rasterize]] = {}


def register_backend(name: str, loader: Callable[[], Rasterize]) -> None:
    """Register a backend by a loader that imports it lazily (CUDA packages stay unimported
    until used, so ``import gs`` works on a CPU machine)."""
    _BACKENDS[name] = loader


def available_backends() -> list[str]:
    out = []
    for name, loader in _BACKENDS.items():
        try:
            loader()
            out.append(name)
        except BackendUnavailable:
            pass
    return out


def get_backend(name: str = "auto", device: str | torch.device | None = None) -> Rasterize:
    """Resolve a backend name. ``auto``: gsplat on CUDA when installed, else inria on CUDA,
    else the pure-PyTorch reference."""
    if name == "auto":
        on_cuda = torch.cuda.is_available() if device is None else torch.device(device).type == "cuda"
        order = ["gsplat", "inria", "torch"] if on_cuda else ["torch"]
        for cand in order:
            try:
                return _BACKENDS[cand]()
            except (BackendUnavailable, KeyError):
                continue
        raise BackendUnavailable("no rasterizer backend available")
    if name not in _BACKENDS:
        raise ValueError(f"unknown render backend '{name}' (known: {sorted(_BACKENDS)} or 'auto')")
    return _BACKENDS[name]()


def resolve_backend_name(name: str = "auto", device: str | torch.device | None = None) -> str:
    """The concrete backend name that ``get_backend(name)`` would use."""
    fn = get_backend(name, device)
    for n, loader in _BACKENDS.items():
        try:
            if loader() is fn:
                return n
        except BackendUnavailable:
            continue
    return name
