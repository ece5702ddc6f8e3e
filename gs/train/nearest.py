"""Nearest codeword search, argmin_k ||x - c_k||_2 per row, for vector quantization.

NSVQ-GS searches four codebooks (up to 4096 codes) for every visible Gaussian at every
iteration. Materialising the N x K distance matrix costs gigabytes of memory traffic per step
(219k x 4096 float32 = 3.6 GB per codebook), which made the NSVQ phase run at ~70 it/s on an
H100. On CUDA with Triton available, a fused kernel keeps the running minimum in registers and
never writes the matrix; elsewhere a chunked ``addmm`` + ``argmin`` does it in one pass per chunk.
Both compute ||c||^2 - 2 x.c (||x||^2 is constant per row) in float32 and break ties towards the
lowest index, like ``torch.argmin``.

Two Triton kernels, picked by ``GS_NEAREST_KERNEL`` (``auto``, ``dot``, ``fma``):
- ``dot``: ``tl.dot`` in full float32 (no tensor cores), the code dimension padded to a power
  of two >= 16. For the 3- and 4-dimensional scale, rotation and colour codebooks most of
  that arithmetic multiplies padding.
- ``fma``: the dot product unrolled over the true dimension (one multiply-add per dimension),
  and the minimum kept per (row, lane) across the code blocks, reduced across lanes once at
  the end instead of once per block.
``auto`` takes ``fma`` for D <= 16 and the torch path above: for the 45-dimensional SH
codebook cuBLAS's float32 GEMM beats both kernels. Measured on an H200, 435k rows, the k4k
codebooks (``benchmarks/nearest_bench.py``): scale 0.88 ms fma / 3.83 dot / 5.33 torch,
rotation 0.96 / 3.82 / 5.34, DC 0.29 / 1.05 / 1.50, SH 40.9 / 4.62 / 2.14; all agree with
the torch path on every row.
"""

from __future__ import annotations

import functools
import os

import torch

FMA_MAX_DIM = 16


@functools.lru_cache(maxsize=1)
def _triton_kernels():
    """``{"dot": run, "fma": run}``, or None where Triton is not importable."""
    try:
        import triton
        import triton.language as tl
    except Exception:  # noqa: BLE001 - any import failure means: use the torch path
        return None

    @triton.jit
    def dot_kernel(x_ptr, c_ptr, c2_ptr, out_ptr, n, k, d, stride_x, stride_c,
                   BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr):
        rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
        dims = tl.arange(0, BLOCK_D)
        x = tl.load(x_ptr + rows[:, None] * stride_x + dims[None, :],
                    mask=(rows[:, None] < n) & (dims[None, :] < d), other=0.0)
        best = tl.full([BLOCK_N], float("inf"), tl.float32)
        best_i = tl.zeros([BLOCK_N], tl.int32)
        for k0 in range(0, k, BLOCK_K):
            codes = k0 + tl.arange(0, BLOCK_K)
            c = tl.load(c_ptr + codes[None, :] * stride_c + dims[:, None],
                        mask=(codes[None, :] < k) & (dims[:, None] < d), other=0.0)
            c2 = tl.load(c2_ptr + codes, mask=codes < k, other=float("inf"))
            dist = c2[None, :] - 2.0 * tl.dot(x, c, input_precision="ieee")
            m = tl.min(dist, axis=1)
            mi = tl.argmin(dist, axis=1, tie_break_left=True).to(tl.int32) + k0
            better = m < best  # strict: an earlier block keeps ties
            best = tl.where(better, m, best)
            best_i = tl.where(better, mi, best_i)
        tl.store(out_ptr + rows, best_i.to(tl.int64), mask=rows < n)

    @triton.jit
    def fma_kernel(x_ptr, c_ptr, c2_ptr, out_ptr, n, k, stride_x, stride_c,
                   D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
        rmask = rows < n
        lanes = tl.arange(0, BLOCK_K)
        best = tl.full([BLOCK_N, BLOCK_K], float("inf"), tl.float32)
        best_i = tl.zeros([BLOCK_N, BLOCK_K], tl.int32)
        for k0 in range(0, k, BLOCK_K):
            codes = k0 + lanes
            kmask = codes < k
            acc = tl.zeros([BLOCK_N, BLOCK_K], tl.float32)
            for j in tl.static_range(D):
                xj = tl.load(x_ptr + rows * stride_x + j, mask=rmask, other=0.0)
                cj = tl.load(c_ptr + codes * stride_c + j, mask=kmask, other=0.0)
                acc += xj[:, None] * cj[None, :]
            c2 = tl.load(c2_ptr + codes, mask=kmask, other=float("inf"))
            dist = c2[None, :] - 2.0 * acc
            better = dist < best  # strict: per lane, codes come in ascending order
            best = tl.where(better, dist, best)
            best_i = tl.where(better, codes[None, :] + tl.zeros([BLOCK_N, BLOCK_K], tl.int32), best_i)
        m = tl.min(best, axis=1)
        # lowest index among the lanes that reach the minimum
        cand = tl.where(best == m[:, None], best_i, 2147483647)
        tl.store(out_ptr + rows, tl.min(cand, axis=1).to(tl.int64), mask=rmask)

    def run_dot(x: torch.Tensor, c: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
        n, d = x.shape
        out = torch.empty(n, dtype=torch.long, device=x.device)
        block_d = max(16, triton.next_power_of_2(d))
        block_n = 64 if block_d > 32 else 128
        grid = (triton.cdiv(n, block_n),)
        dot_kernel[grid](x, c, c2, out, n, c.shape[0], d, x.stride(0), c.stride(0),
                         BLOCK_N=block_n, BLOCK_K=64, BLOCK_D=block_d, num_warps=4)
        return out

    def run_fma(x: torch.Tensor, c: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
        n, d = x.shape
        out = torch.empty(n, dtype=torch.long, device=x.device)
        block_n = 64
        grid = (triton.cdiv(n, block_n),)
        fma_kernel[grid](x, c, c2, out, n, c.shape[0], x.stride(0), c.stride(0),
                         D=d, BLOCK_N=block_n, BLOCK_K=64, num_warps=4)
        return out

    return {"dot": run_dot, "fma": run_fma}


def fused_available(device: torch.device | str) -> bool:
    """Whether ``nearest_code`` uses a Triton kernel on ``device`` (``GS_NEAREST_FUSED=0``
    turns them off)."""
    if os.environ.get("GS_NEAREST_FUSED", "1") == "0":
        return False
    return torch.device(device).type == "cuda" and _triton_kernels() is not None


def kernel_name(d: int, kernel: str | None = None) -> str:
    """Which implementation serves dimension ``d`` on CUDA: ``kernel`` or ``GS_NEAREST_KERNEL``
    (``auto``: the ``fma`` kernel up to FMA_MAX_DIM dimensions, the ``torch`` path above)."""
    choice = kernel or os.environ.get("GS_NEAREST_KERNEL", "auto")
    if choice not in ("auto", "dot", "fma", "torch"):
        raise ValueError(f"GS_NEAREST_KERNEL must be auto, dot, fma or torch, got {choice!r}")
    if choice == "auto":
        return "fma" if d <= FMA_MAX_DIM else "torch"
    return choice


def nearest_code(x: torch.Tensor, codebook: torch.Tensor, max_elements: int = 1 << 26,
                 fused: bool | None = None, kernel: str | None = None) -> torch.Tensor:
    """Index of the nearest code for every row of ``x`` (N x D) in ``codebook`` (K x D).

    ``fused=None`` uses a Triton kernel on CUDA when available (``kernel``: ``dot``, ``fma``,
    ``torch`` or None for :func:`kernel_name`'s choice); ``max_elements`` bounds the distance
    chunk of the torch path."""
    x = x.detach().float().contiguous()
    c = codebook.detach().float().contiguous()
    c2 = (c * c).sum(1)
    if x.shape[0] == 0:
        return torch.empty(0, dtype=torch.long, device=x.device)
    if fused is None:
        fused = fused_available(x.device)
    name = kernel_name(x.shape[1], kernel) if fused else "torch"
    if name != "torch":
        kernels = _triton_kernels()
        if kernels is None:
            raise RuntimeError("fused nearest-code search needs Triton, which is not importable")
        return kernels[name](x, c, c2)
    chunk = max(1, max_elements // max(1, c.shape[0]))
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    ct = c.T
    for i in range(0, x.shape[0], chunk):
        # one pass writes the chunk's distances: c2 - 2 x.c
        out[i:i + chunk] = torch.addmm(c2, x[i:i + chunk], ct, beta=1.0, alpha=-2.0).argmin(1)
    return out
