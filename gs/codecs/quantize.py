"""Uniform scalar quantizers of the codecs: positions on a 2^bits grid, attribute columns on
2^bits levels each with its own range, and residuals in groups of columns that share one
float32 min/max and one bit depth (HGSC's LoD residuals).

A group is ``(name, columns slice, bits)``. Encoder and decoder reconstruct with the same
float64 formula (:func:`group_rows`), so a decoder is bit exact with the encoder's
reconstruction.
"""

from __future__ import annotations

import numpy as np

ROWS = 1 << 12  # rows per block of the row-wise float work (stays in cache)


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    r = hi.astype(np.float64) - lo.astype(np.float64)
    return np.where(r > 0, r, 1.0)


def quantize_positions(xyz: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    """(N, 3) positions in the box [lo, hi] -> int64 grid coordinates 0 .. 2^bits - 1 per axis."""
    levels = float(2 ** bits - 1)
    q = np.floor((xyz.astype(np.float64) - lo.astype(np.float64)) / _ranges(lo, hi) * levels + 0.5)
    return np.clip(q, 0, levels).astype(np.int64)


def dequantize_positions(q: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    """Grid coordinates -> float32 positions (the voxel corners of :func:`quantize_positions`)."""
    span = np.where(hi > lo, hi.astype(np.float64) - lo.astype(np.float64), 0.0)
    return (q.astype(np.float64) / float(2 ** bits - 1) * span + lo.astype(np.float64)).astype(np.float32)


def quantize_columns(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, levels: int) -> np.ndarray:
    """(N, D) values -> int64 0 .. ``levels`` per column over the column's [lo, hi]."""
    q = np.rint((v.astype(np.float64) - lo.astype(np.float64)) / _ranges(lo, hi) * levels)
    return np.clip(q, 0, levels).astype(np.int64)


def dequantize_columns(q: np.ndarray, lo: np.ndarray, hi: np.ndarray, levels: int) -> np.ndarray:
    """Inverse of :func:`quantize_columns` (float64)."""
    span = np.where(hi > lo, hi.astype(np.float64) - lo.astype(np.float64), 0.0)
    return q.astype(np.float64) / levels * span + lo.astype(np.float64)


def _group_columns(groups, d: int, per_group: np.ndarray) -> np.ndarray:
    out = np.empty(d, dtype=per_group.dtype)
    for g, (_, sl, _) in enumerate(groups):
        out[sl] = per_group[g]
    return out


def group_levels(groups) -> np.ndarray:
    """(D,) highest residual symbol of every column (2^bits - 1 of its group)."""
    d = max(sl.stop for _, sl, _ in groups)
    return _group_columns(groups, d, np.array([2 ** b - 1 for *_, b in groups], dtype=np.int64))


def group_quantize(r: np.ndarray, groups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform quantization of residuals (n, D) with ONE float32 min/max per group: q = round((r - min) / (max - min) * (2^b - 1)). Returns (q, min, max)."""
    n = len(r)
    g_lo = np.array([r[:, sl].min() if n else 0.0 for _, sl, _ in groups], dtype=np.float32)
    g_hi = np.array([r[:, sl].max() if n else 0.0 for _, sl, _ in groups], dtype=np.float32)
    d = r.shape[1]
    lv = group_levels(groups).astype(np.float64)
    lo_c = _group_columns(groups, d, g_lo.astype(np.float64))
    rng_c = _group_columns(groups, d, _ranges(g_lo, g_hi))
    return np.clip(np.rint((r - lo_c) / rng_c * lv), 0, lv).astype(np.int64), g_lo, g_hi


def group_step(lo: np.ndarray, hi: np.ndarray, groups, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column: dequantization step (max - min) / (2^b - 1) and offset (min)."""
    levels = _group_columns(groups, d, np.array([2 ** b - 1 for *_, b in groups], dtype=np.float64))
    lo_c = _group_columns(groups, d, lo.astype(np.float64))
    hi_c = _group_columns(groups, d, hi.astype(np.float64))
    return np.where(hi_c > lo_c, hi_c - lo_c, 0.0) / levels, lo_c


def group_rows(pred: np.ndarray, q: np.ndarray, step: np.ndarray, lo_c: np.ndarray) -> np.ndarray:
    """float32(q * step + min + pred), in float64 (the one formula encoder and decoder use)."""
    out = np.ascontiguousarray(q).astype(np.float64)  # (from any layout: one fast pass)
    out *= step
    out += lo_c
    out += pred
    return out.astype(np.float32)


def group_reconstruct(pred: np.ndarray, q: np.ndarray, lo: np.ndarray, hi: np.ndarray, groups) -> np.ndarray:
    """Prediction + dequantized residual (float32); the one function encoder and decoder use."""
    step, lo_c = group_step(lo, hi, groups, pred.shape[1])
    out = np.empty(pred.shape, dtype=np.float32)
    for r in range(0, len(pred), ROWS):
        out[r:r + ROWS] = group_rows(pred[r:r + ROWS], q[r:r + ROWS], step, lo_c)
    return out


__all__ = ["ROWS", "quantize_positions", "dequantize_positions", "quantize_columns", "dequantize_columns",
           "group_levels", "group_quantize", "group_step", "group_rows", "group_reconstruct"]
