"""Lossless geometry of integer grid points: Morton codes and an octree coder.

:func:`encode_octree` codes sorted unique Morton codes breadth first, one 8-bit occupancy
symbol per node, with the adaptive range coder of :mod:`gs.codecs.column_streams` (fresh
statistics per level). A node's context is its parent's occupancy count and the number of its
occupied face-adjacent siblings - much simpler than MPEG G-PCC's neighbour-dependent contexts,
planar and direct coding modes, so sizes do not match TMC13. :func:`encode_geometry_draco` is
the alternative through DracoPy's kd-tree coder (optional dependency).
"""

from __future__ import annotations

import numpy as np

from gs.codecs.base import BitstreamError, decoding
from gs.codecs.column_streams import adaptive_code, encoder_bytes, new_decoder, new_encoder

OCTREE_CONTEXTS = 32


# ---------------------------------------------------------------------------- Morton codes
def _spread3(v: np.ndarray) -> np.ndarray:
    """Bits 0..20 of v moved to bits 0, 3, 6, ... (magic-number bit interleave)."""
    v = v & 0x1FFFFF
    v = (v | (v << 32)) & 0x1F00000000FFFF
    v = (v | (v << 16)) & 0x1F0000FF0000FF
    v = (v | (v << 8)) & 0x100F00F00F00F00F
    v = (v | (v << 4)) & 0x10C30C30C30C30C3
    return (v | (v << 2)) & 0x1249249249249249


def _compact3(v: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_spread3`."""
    v = v & 0x1249249249249249
    v = (v | (v >> 2)) & 0x10C30C30C30C30C3
    v = (v | (v >> 4)) & 0x100F00F00F00F00F
    v = (v | (v >> 8)) & 0x1F0000FF0000FF
    v = (v | (v >> 16)) & 0x1F00000000FFFF
    return (v | (v >> 32)) & 0x1FFFFF


def morton_encode(q: np.ndarray, bits: int) -> np.ndarray:
    """(N,3) non-negative ints < 2^bits -> (N,) int64 codes (x bit above y above z)."""
    q = np.asarray(q, dtype=np.int64)
    if bits > 21:
        raise ValueError(f"Morton codes hold at most 21 bits per axis, got {bits}")
    mask = (1 << bits) - 1
    return (_spread3(q[:, 0] & mask) << 2) | (_spread3(q[:, 1] & mask) << 1) | _spread3(q[:, 2] & mask)


def morton_decode(code: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of :func:`morton_encode`: (N,) codes -> (N, 3) int64 grid coordinates."""
    code = np.asarray(code, dtype=np.int64)
    if bits > 21:
        raise ValueError(f"Morton codes hold at most 21 bits per axis, got {bits}")
    code = code & ((1 << (3 * bits)) - 1)
    q = np.empty((len(code), 3), dtype=np.int64)
    for axis in range(3):
        q[:, axis] = _compact3(code >> (2 - axis))
    return q


# ---------------------------------------------------------------------------- octree coder
def _octree_context_table() -> np.ndarray:
    occ = np.arange(256, dtype=np.int64)[:, None]
    child = np.arange(8, dtype=np.int64)[None, :]
    pop = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1).astype(np.int64)[:, None]
    sib = sum(((occ >> (child ^ f)) & 1) for f in (1, 2, 4))
    return ((pop - 1) * 4 + sib).astype(np.int64)  # row 0 (empty parent) unused


_OCTREE_CTX_TABLE = _octree_context_table()


def _octree_contexts(parent_occ: np.ndarray, child_idx: np.ndarray) -> np.ndarray:
    """Context of a node: (#occupied children of its parent - 1) * 4 + #occupied face-adjacent
    siblings (child index differing in one bit); a lookup in a 256 x 8 table."""
    return _OCTREE_CTX_TABLE[np.asarray(parent_occ, dtype=np.int64), np.asarray(child_idx, dtype=np.int64)]


def octree_levels(codes: np.ndarray, depth: int):
    """Per level (root first): the occupancy bytes of the nodes (sorted keys) and the contexts
    of the nodes (from the parent level)."""
    codes = np.asarray(codes, dtype=np.int64)
    ctx = np.zeros(1, dtype=np.int64)
    for level in range(depth):
        children = codes >> (3 * (depth - level - 1))
        first = np.concatenate([[True], children[1:] != children[:-1]])
        children = children[first]
        parents = children >> 3
        bit = np.int64(1) << (children & 7)
        pstart = np.concatenate([[True], parents[1:] != parents[:-1]])
        occ = np.bitwise_or.reduceat(bit, np.flatnonzero(pstart))
        yield occ, ctx
        ctx = _octree_contexts(occ[np.cumsum(pstart) - 1], children & 7)


def encode_octree(codes: np.ndarray, depth: int, use_context: bool = True) -> bytes:
    """Lossless octree coding of sorted unique Morton codes (``depth`` bits per axis):
    breadth-first occupancy bytes, adaptive range coder, fresh statistics per level;
    ``use_context=False`` (benchmark only) codes every byte of a level with one model."""
    codes = np.asarray(codes, dtype=np.int64)
    if len(codes) == 0:
        return b""
    if np.any(np.diff(codes) <= 0):
        raise ValueError("encode_octree needs sorted unique Morton codes")
    enc = new_encoder()
    for occ, ctx in octree_levels(codes, depth):
        adaptive_code(enc, occ, ctx if use_context else np.zeros_like(ctx), OCTREE_CONTEXTS, 256)
    return encoder_bytes(enc)


def decode_octree(data: bytes, depth: int, n_points: int, name: str = "geometry",
                  use_context: bool = True) -> np.ndarray:
    """Inverse of :func:`encode_octree` -> sorted unique Morton codes; BitstreamError naming
    ``name`` on a stream that is not ``n_points`` points."""
    if n_points == 0:
        return np.zeros(0, dtype=np.int64)
    with decoding(name):
        dec = new_decoder(data)
    keys = np.zeros(1, dtype=np.int64)
    ctx = np.zeros(1, dtype=np.int64)
    for _level in range(depth):
        with decoding(name):
            occ = adaptive_code(dec, None, ctx if use_context else np.zeros_like(ctx), OCTREE_CONTEXTS, 256)
        if np.any(occ == 0):
            raise BitstreamError(f"{name}: empty octree node (corrupt geometry stream)")
        mask = np.unpackbits(occ.astype(np.uint8)[:, None], axis=1, bitorder="little")
        # the set bits in row-major order (sorted keys); a 1-D nonzero over a bool view is
        # several times faster than a 2-D nonzero
        flat = np.flatnonzero(mask.view(bool))
        rows, child = flat >> 3, flat & 7
        keys = keys[rows] * 8 + child
        if len(keys) > n_points:
            raise BitstreamError(f"{name}: octree has more nodes than the {n_points} points in the header")
        ctx = _octree_contexts(occ[rows], child)
    if len(keys) != n_points:
        raise BitstreamError(f"{name}: octree decodes to {len(keys)} points, header says {n_points}")
    return keys


# ---------------------------------------------------------------------------- Draco
def encode_geometry_draco(q: np.ndarray, bits: int) -> bytes:
    """DracoPy kd-tree point cloud coding of integer grid points (lossless on the grid: the
    grid spans [0, 2^bits - 1] and Draco quantizes with ``bits`` bits over that range)."""
    import DracoPy

    pts = np.asarray(q, dtype=np.float32)
    span = float(2 ** bits - 1)
    return bytes(DracoPy.encode(pts, quantization_bits=bits, compression_level=10, quantization_range=span,
                                quantization_origin=[0.0, 0.0, 0.0]))


def decode_geometry_draco(data: bytes, bits: int, name: str = "geometry") -> np.ndarray:
    """Inverse of :func:`encode_geometry_draco`: (N, 3) int64 grid points (Draco's order)."""
    try:
        import DracoPy
    except ImportError as exc:
        raise BitstreamError(f"{name}: geometry is Draco-coded but DracoPy is not installed") from exc
    try:
        pts = np.asarray(DracoPy.decode(data).points, dtype=np.float64)
    except Exception as exc:
        raise BitstreamError(f"{name}: cannot decode the Draco geometry ({exc})") from exc
    return np.rint(pts.reshape(-1, 3)).astype(np.int64)


__all__ = ["OCTREE_CONTEXTS", "morton_encode", "morton_decode", "octree_levels", "encode_octree", "decode_octree",
           "encode_geometry_draco", "decode_geometry_draco"]
