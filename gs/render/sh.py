"""Real spherical harmonics of degree 0-3 with the constants and sign convention of the
original 3DGS code (``utils/sh_utils.py`` / ``computeColorFromSH``), which gsplat shares.

The basis carries the Condon-Shortley phase, so the degree-1 terms are ``-C1 y, C1 z, -C1 x``.
The colour of a Gaussian is ``max(eval_sh(...) + 0.5, 0)``; the backends apply that offset
and clamp (:func:`sh_to_color`).
"""

from __future__ import annotations

import torch

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (
    1.0925484305920792,
    -1.0925484305920792,
    0.31539156525252005,
    -1.0925484305920792,
    0.5462742152960396,
)
C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def sh_basis(degree: int, dirs: torch.Tensor) -> torch.Tensor:
    """The (degree+1)^2 basis functions at unit directions ``dirs`` (N,3) -> (N,K)."""
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree must be 0..3, got {degree}")
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, C0)]
    if degree > 0:
        out += [-C1 * y, C1 * z, -C1 * x]
    if degree > 1:
        xx, yy, zz = x * x, y * y, z * z
        xy, yz, xz = x * y, y * z, x * z
        out += [
            C2[0] * xy,
            C2[1] * yz,
            C2[2] * (2.0 * zz - xx - yy),
            C2[3] * xz,
            C2[4] * (xx - yy),
        ]
        if degree > 2:
            out += [
                C3[0] * y * (3.0 * xx - yy),
                C3[1] * xy * z,
                C3[2] * y * (4.0 * zz - xx - yy),
                C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy),
                C3[4] * x * (4.0 * zz - xx - yy),
                C3[5] * z * (xx - yy),
                C3[6] * x * (xx - 3.0 * yy),
            ]
    return torch.stack(out, dim=-1)


def eval_sh(degree: int, sh: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Evaluate SH coefficients ``sh`` (N,K,C) (K >= (degree+1)^2; extra bases are ignored)
    at unit directions ``dirs`` (N,3) -> (N,C). No offset, no clamp."""
    k = (degree + 1) ** 2
    if sh.shape[-2] < k:
        raise ValueError(f"SH degree {degree} needs {k} coefficients per channel, got {sh.shape[-2]}")
    basis = sh_basis(degree, dirs)  # (N,K)
    return (basis.unsqueeze(-1) * sh[..., :k, :]).sum(-2)


def sh_to_color(degree: int, sh: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """The 3DGS colour: ``max(eval_sh + 0.5, 0)`` (``dirs`` need not be normalised)."""
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    return torch.clamp_min(eval_sh(degree, sh, dirs) + 0.5, 0.0)
