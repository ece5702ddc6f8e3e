"""Vector-quantization blocks: Gaussian attributes as (N, D) matrices and back, k-means
codebooks, noise substitution (a quantizer that passes gradients to the codebook), and a row
gather whose backward scales with many repeated indices."""

from __future__ import annotations

from typing import Callable

import torch

from gs.codecs.entropy import bits_for
from gs.model import num_sh_bases


def attr_matrix(params: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    """The raw (as optimised) attribute as an (N, D) matrix: log-scales, unnormalised
    quaternions, SH DC (N,3), SH rest flattened coefficient-major (N, 3*(K-1))."""
    t = params[key]
    return t.reshape(t.shape[0], -1)


def matrix_to_param(key: str, mat: torch.Tensor, sh_degree: int) -> torch.Tensor:
    n = mat.shape[0]
    if key == "sh0":
        return mat.reshape(n, 1, 3)
    if key == "shN":
        return mat.reshape(n, num_sh_bases(sh_degree) - 1, 3)
    return mat


def take_rows(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``t[idx]`` along the first axis, with a backward that scales with many repeats: ``t[idx]``
    backpropagates through an accumulating ``index_put_`` whose CUDA kernel sums the rows of
    one repeated index serially, ``index_select``'s backward is an ``index_add_``. Same values;
    the gradient differs only in summation order."""
    return t.index_select(0, idx)


def noise_substitute(x: torch.Tensor, c_hat: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + ||x - c_hat|| / (||v|| + 1e-12) * v, v ~ N(0, I) per row: noise substitution (NSVQ,
    Vali and Baeckstroem), the quantization error as a random direction of the same norm.

    Neither x nor c_hat is detached: the codebook's gradient flows through the residual norm,
    x gets the identity plus the norm term. ||result - x|| == ||x - c_hat|| per row."""
    v = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
    err = (x - c_hat).norm(dim=1, keepdim=True)
    return x + err / (v.norm(dim=1, keepdim=True) + 1e-12) * v


def kmeans(x: torch.Tensor, k: int, assign: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], iters: int = 10,
           tol: float = 1e-4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Lloyd's k-means: K random distinct rows as centroids, ``iters`` updates, stop when no
    centroid moves more than ``tol``; an empty cluster keeps its centroid. ``assign(x, c)``
    gives the nearest centroid of every row. With fewer rows than K: all rows plus randomly
    drawn rows with a small jitter."""
    x = x.detach().float()
    n = x.shape[0]
    if n == 0:
        raise ValueError("k-means over zero vectors")
    dev = x.device
    gen_dev = generator.device if generator is not None else dev
    if n >= k:
        c = x[torch.randperm(n, generator=generator, device=gen_dev)[:k].to(dev)].clone()
    else:  # fewer vectors than codes (tiny scenes): all rows + jittered random repeats
        extra = x[torch.randint(n, (k - n,), generator=generator, device=gen_dev).to(dev)]
        scale = x.std(0, keepdim=True).nan_to_num(0.0) * 1e-3 + 1e-6
        noise = torch.randn(extra.shape, generator=generator, device=gen_dev).to(dev)
        c = torch.cat([x, extra + noise * scale], 0)
    for _ in range(iters):
        a = assign(x, c)
        sums = torch.zeros_like(c).index_add_(0, a, x)
        counts = torch.bincount(a, minlength=k).to(x.dtype)[:, None]
        new = torch.where(counts > 0, sums / counts.clamp_min(1), c)
        shift = (new - c).norm(dim=1).max()
        c = new
        if float(shift) < tol:
            break
    return c


def fixed_width_bytes(n: int, sizes: dict[str, tuple[int, int]]) -> dict[str, int]:
    """NSVQ-GS upstream's stored payload (its paper layout): float32 xyz + opacity, ceil(log2 K)-bit indices per
    attribute (each stream byte-padded), raw float32 codebooks; no container, no zip."""
    out = {"means": 12 * n, "opacities": 4 * n}
    for key, (k, d) in sizes.items():
        out[f"index.{key}"] = (n * bits_for(k) + 7) // 8
        out[f"codebook.{key}"] = 4 * k * d
    return out


__all__ = ["fixed_width_bytes", "attr_matrix", "matrix_to_param", "take_rows", "noise_substitute", "kmeans"]
