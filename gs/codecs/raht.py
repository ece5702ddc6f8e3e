"""Integer RAHT (region-adaptive hierarchical transform) over Morton-ordered points and the
coding of its coefficients.

The transform is a weighted integer Haar in lifting form, exactly invertible on integers (as
TMC13's ``integerHaar``), one merge per Morton bit (x, y, z alternate). The high-pass
coefficients are coded per column as exp-Golomb classes (the bit length of the zigzag value)
with the adaptive range coder of :mod:`gs.codecs.column_streams`, contexts = the subtree
weight class of the merged pair, and the mantissa bits below the leading one raw.
"""

from __future__ import annotations

import numpy as np

from gs.codecs.base import BitstreamError, decoding
from gs.codecs.column_streams import PRIOR, Plan, adaptive_code, encoder_bytes, new_decoder, new_encoder
from gs.codecs.entropy import pack_bits, unpack_bits

CAT_ALPHABET = 20  # exp-Golomb classes (bit length of the zigzag value) up to 2^19


def raht_structure(codes: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The RAHT merge tree of sorted unique Morton codes: per binary level (one Morton bit, so
    x, y, z alternate) the left index of each merged sibling pair, the two subtree weights
    and the mask of nodes that survive into the next level."""
    keys = np.asarray(codes, dtype=np.int64)
    w = np.ones(len(keys), dtype=np.int64)
    levels = []
    while len(keys) > 1:
        pk = keys >> 1
        i1 = np.flatnonzero(pk[1:] == pk[:-1])
        keep = np.ones(len(keys), dtype=bool)
        keep[i1 + 1] = False
        levels.append((i1, w[i1], w[i1 + 1], keep))
        w = w.copy()
        w[i1] += w[i1 + 1]
        keys, w = pk[keep], w[keep]
    return levels


def raht_forward(values: np.ndarray, levels) -> tuple[np.ndarray, np.ndarray]:
    """Integer RAHT (weighted Haar in lifting form): per merged pair with weights w1, w2 and
    values a1, a2: high = a2 - a1, low = a1 + floor(w2 * high / (w1 + w2)) (the weighted mean,
    rounded). Exactly invertible on integers. Returns (highs (N-1, C), dc (1, C)); highs are
    ordered bottom level first."""
    a = np.asarray(values, dtype=np.int64)
    if a.ndim == 1:
        a = a[:, None]
    highs = []
    for i1, w1, w2, keep in levels:
        h = a[i1 + 1] - a[i1]
        a = a.copy()
        a[i1] = a[i1] + (w2[:, None] * h) // (w1 + w2)[:, None]
        highs.append(h)
        a = a[keep]
    hi = np.concatenate(highs, axis=0) if highs else np.zeros((0, a.shape[1]), dtype=np.int64)
    return hi, a


def raht_inverse(highs: np.ndarray, dc: np.ndarray, levels) -> np.ndarray:
    """Inverse of :func:`raht_forward` (exact). Works in place on one (N, C) array: a node's
    value lives in the row of its first (leftmost) point, so a level touches only its merged
    pairs (N - 1 in all) instead of copying every surviving node at every level. The weighted
    floor division runs in float64: |w2 * h| < 2^53, so the quotient is never rounded across
    an integer and its floor is the integer floor division."""
    dc = np.asarray(dc, dtype=np.int64)
    if not levels:
        return dc.copy()
    n = len(levels[0][3])
    pairs, pos = [], np.arange(n)  # pos: the first point of every node of the level
    for i1, _, _, keep in levels:
        pairs.append((pos[i1], pos[i1 + 1]))
        pos = pos[keep]
    a = np.empty((n, dc.shape[1]), dtype=np.int64)
    a[0] = dc[0]
    end = len(highs)
    for (i1, w1, w2, _), (left, right) in zip(reversed(levels), reversed(pairs)):
        h = highs[end - len(i1):end]
        end -= len(i1)
        t = (w2[:, None] * h).astype(np.float64)
        t /= (w1 + w2).astype(np.float64)[:, None]
        a1 = a[left]
        a1 -= np.floor(t, out=t).astype(np.int64)
        a[left] = a1
        a1 += h
        a[right] = a1
    return a


def raht_weight_class(levels, n_classes: int) -> np.ndarray:
    """Per high-pass coefficient (bottom level first): the bit length of the smaller of the
    two merged subtree weights, minus one, clipped to ``n_classes - 1`` (a coding context)."""
    if not levels:
        return np.zeros(0, dtype=np.int64)
    wmin = np.concatenate([np.minimum(w1, w2) for _, w1, w2, _ in levels])
    cls = np.floor(np.log2(wmin)).astype(np.int64)
    return np.minimum(cls, n_classes - 1)


# exp-Golomb style classes: zigzag u -> class k = bit length of u, k-1 raw mantissa bits
def _zigzag(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, 2 * x, -2 * x - 1)


def _unzigzag(u: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_zigzag` (u >= 0): (u >> 1) xor -(u & 1), in place on a copy-free path."""
    sign = u & 1
    np.negative(sign, out=sign)
    out = u >> 1
    out ^= sign
    return out


def _bit_length(u: np.ndarray) -> np.ndarray:
    out = np.zeros(u.shape, dtype=np.int64)
    nz = u > 0
    out[nz] = np.floor(np.log2(u[nz].astype(np.float64))).astype(np.int64) + 1
    # guard float rounding near powers of two
    out[nz] += (u[nz] >> out[nz]) > 0
    out[nz] -= (u[nz] >> (out[nz] - 1)) == 0
    return out


def encode_coefficients(coeffs: np.ndarray, contexts: np.ndarray, n_ctx: int) -> tuple[list[bytes], bytes]:
    """Code signed integer coefficients (M, C) column by column: the class (bit length of the
    zigzag value) with the adaptive range coder (contexts per row), one stream per column with
    fresh statistics, the mantissa bits below the leading one raw.
    Returns (the class stream of every column, the mantissa stream)."""
    u = _zigzag(np.asarray(coeffs, dtype=np.int64))
    cat = _bit_length(u)
    if cat.size and cat.max() >= CAT_ALPHABET:
        raise ValueError("coefficient too large for the class alphabet")
    plan = Plan(np.asarray(contexts, dtype=np.int64))
    streams = []
    for c in range(u.shape[1]):
        enc = new_encoder()
        adaptive_code(enc, cat[:, c], plan.contexts, n_ctx, CAT_ALPHABET, plan=plan)
        streams.append(encoder_bytes(enc))
    flat_u, flat_k = u.T.ravel(), cat.T.ravel()
    mant = []
    for k in range(2, CAT_ALPHABET):
        sel = flat_k == k
        if sel.any():
            mant.append(pack_bits(flat_u[sel] - (np.int64(1) << (k - 1)), k - 1))
    return streams, b"".join(mant)


def decode_coefficients(cat_data: bytes, mant_data: bytes, contexts: np.ndarray, n_ctx: int, n_cols: int,
                        name: str) -> np.ndarray:
    """Inverse of format 1's coefficient coding (every column's classes in one stream)."""
    with decoding(name):
        dec = new_decoder(cat_data)
    m = len(contexts)
    plan = Plan(np.asarray(contexts, dtype=np.int64))
    cat = np.zeros((n_cols, m), dtype=np.uint8)  # column-major, as coded
    if m:
        for c in range(n_cols):
            with decoding(name):
                adaptive_code(dec, None, plan.contexts, n_ctx, CAT_ALPHABET, PRIOR, plan, cat[c])
    return coefficients_from_classes(cat, mant_data, name)


def coefficients_from_classes(cat: np.ndarray, mant_data: bytes, name: str) -> np.ndarray:
    """Decoded classes (C, M), column-major as coded, + the mantissa stream -> coefficients (M, C)."""
    n_cols, m = cat.shape
    flat_k = np.ascontiguousarray(cat).ravel()
    # class 0 = the value 0, class 1 = 1; class k >= 2: leading one 2^(k-1) + k-1 raw bits,
    # written below; the positions of each class in increasing order, from one stable sort
    flat_u = np.minimum(flat_k, 1).astype(np.int64)
    order = np.argsort(flat_k, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(flat_k, minlength=CAT_ALPHABET))])
    pos = 0
    for k in range(2, CAT_ALPHABET):
        sel = order[bounds[k]:bounds[k + 1]]
        if len(sel):
            nbytes = (len(sel) * (k - 1) + 7) // 8
            if pos + nbytes > len(mant_data):
                raise BitstreamError(f"{name}: mantissa stream too short")
            mant = unpack_bits(mant_data[pos:pos + nbytes], len(sel), k - 1)
            mant += np.int64(1) << (k - 1)
            flat_u[sel] = mant
            pos += nbytes
    if pos != len(mant_data):
        raise BitstreamError(f"{name}: mantissa stream has {len(mant_data) - pos} trailing bytes")
    return _unzigzag(flat_u).reshape(n_cols, m).T


__all__ = ["CAT_ALPHABET", "raht_structure", "raht_forward", "raht_inverse", "raht_weight_class",
           "encode_coefficients", "decode_coefficients", "coefficients_from_classes"]
