"""HGSC: hierarchical Gaussian splatting compression (post-training, training-free codec).

Paper: Huang, Huang, Yang, Xu, Li, "HGSC: Hierarchical Gaussian Splatting Compression",
ICASSP 2025 (arXiv 2411.06976); upstream code H-Huang774/HGSC. Spec: methods/hgsc.md (section
numbers below refer to it).

Encoder (:class:`HGSCCodec`, spec §2), over any trained model (any SH degree):

1. Significance pruning (§2.1-2.2): G_i = blend weight alpha*T of Gaussian i summed over every
   pixel of every TRAINING view (:func:`gs.train.stats.summed_blend_weights`: exact, no races),
   score I = G * clip(V / quantile(V, 0.8), 0, 1) ** 0.01, and the ``prune_percent`` % lowest
   scores are removed. Without a scene (``ctx.scene is None``) pruning is skipped with a
   warning and the statistics say so (``significance_pruning``).
2. RGB -> YUV on the DC and every SH-rest triplet (§2.3).
3. 15-bit grid per axis (anisotropic voxels, bbox in the bitstream); Gaussians falling into the
   same voxel are merged (G-PCC's mergeDuplicatedPoints) and the grid geometry is coded
   losslessly (§2.4), by :func:`encode_octree` (own octree coder, default) or Draco.
4. Deterministic KD-tree blocks + farthest point sampling (§2.5, §2.7) split the voxels into
   anchors (10 % per leaf of <= ``block_size``), LoD1 (33 % per leaf of <= 256 non-anchors) and
   LoD2 (the rest); the decoder rebuilds the same partition from the decoded geometry.
5. Anchors (§2.6): the attribute vector (dc | rest channel-major | opacity | log-scales | raw
   quaternion) is quantized per column to 2^15 levels (values 0..32768 as upstream) and
   transformed losslessly with an integer-lifting RAHT (:func:`raht_forward`) over the
   Morton-ordered anchors; the high-pass coefficients are entropy coded (exp-Golomb classes
   with an adaptive arithmetic coder, contexts = column x subtree weight class, + raw bits).
6. LoD1 / LoD2 (§2.8): predicted by copying the attributes of the nearest reconstructed anchor
   (LoD2: anchors + reconstructed LoD1), k = 1; the residual is quantized uniformly with one
   min/max per attribute group (8 bits; SH-rest U and V 4 bits) and entropy coded with the
   adaptive arithmetic coder, one stream per column with its own statistics
   (:mod:`gs.column_streams`), so the decoder can range-decode the columns in worker processes.

Bitstream (§3): five checksummed containers (:mod:`gs.codecs.container`), header / geometry /
anchors / lod1 / lod2; size = all of their bytes (side info included); components report
each file. The decoder (§4) reads only these files. Format 2 (current) stores each LoD residual column's
and each anchor class column's stream with the stream sizes; format 1 (one stream for all
columns, the same statistics) still reads.

Deliberate differences from upstream and from the paper's tools:

- No MPEG G-PCC (TMC13 is not on PyPI). Geometry: own lossless octree coder, breadth-first
  8-bit occupancy symbols of the Morton-sorted voxels coded with an adaptive range coder
  (constriction) whose context is the parent's occupancy count and the number of occupied
  face-adjacent siblings - much simpler than G-PCC's neighbour-dependent contexts, planar /
  direct coding modes, so sizes do not match TMC13. benchmarks/results/hgsc_choices.md compares
  it with DracoPy's kd-tree coder (``geometry_coder="draco"``, optional dependency): equal on a
  150k synthetic model (13.0 vs 13.1 bits/point), 13 % smaller on a trained model (14.6 vs
  16.9), so the octree coder is the default and needs nothing beyond constriction. Anchor attributes: own integer RAHT (weighted integer Haar in
  lifting form, exactly invertible on integers, like TMC13's ``integerHaar``) with our own
  entropy coder instead of TMC13's; one transform over all columns instead of 56 tmc3 runs.
  LoD residuals: an adaptive range coder instead of zlib over packed bits (the quantization is
  upstream's).
- Significance views = the scene's training views (upstream renders every camera in
  cameras.json, test views included; the encoder must not look at the test views). The volume
  term uses the activated scales (volume = prod exp(log-scale), as LightGaussian and the paper
  describe it), not upstream's product of raw log-scales (spec §8.1); with the exponent 0.01
  it barely matters. Exactly floor(p% * N) Gaussians are removed (stable order on ties)
  instead of ``score >= percentile`` (which keeps all ties, e.g. every never-seen Gaussian).
- Voxel merging keeps, per voxel, the Gaussian nearest to the voxel centre (upstream: the
  nearest original to the decoded point, which can come from a neighbouring voxel).
- KD split at the rank median (stable order) instead of "<= median value": balanced leaves,
  no endless loop on duplicate coordinates (spec §8.6). FPS starts at the first point of a
  leaf in Morton order instead of a seeded random point, and works on integer squared
  distances (exact, identical on CPU and GPU).
- YUV -> RGB uses the exact inverse of the forward matrix (upstream's 5-digit inverse adds
  ~1e-4 relative error).
- Size = every byte the decoder reads (upstream mixes bits and bytes and drops geometry, §3).

Decoder speed (the output is the encoder's reconstruction bit for bit): the partition runs as torch ops on the
decode device (radix sorts per KD level, FPS over blocks of leaves with float64 distances, exact
on the integer grid); the adaptive coder decodes whole chunks per context with plans shared by
all columns; the anchor class columns and the LoD residual columns (about 50 symbols per
Gaussian, constriction holding the GIL) are range-decoded by a pool of worker processes
(``GS_DECODE_WORKERS``, default every core up to 16, one process below 2M symbols), in the
background: the anchors (inverse RAHT in place, one update per merged pair) and LoD1 are
rebuilt while the LoD2 columns still decode; the two nearest-reference searches (scipy,
without the GIL) run in threads meanwhile; the float work (LoD predict, YUV -> RGB) runs on
blocks of rows in a thread pool (numpy releases the GIL), LoD2 rows (never a reference) going
from prediction + residual straight into the output.
benchmarks/hgsc_decode.py --stages times them.
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gs.codecs.base import BitstreamError, Codec, CodecContext
from gs.codecs.container import read_container, write_container
from gs.codecs.entropy import pack_bits, unpack_bits
from gs.column_streams import (
    ColumnDecodeError,
    Plan,
    adaptive_code,
    chunk_bounds,
    encode_column,
    split_streams,
    submit_columns,
    usable_cores,
)
from gs.methods.registry import MethodSpec, param_schema
from gs.model import GaussianModel, num_sh_bases

FORMAT_VERSION = 2  # 2: one range-coded stream per LoD residual column (decoded in parallel)
READ_VERSIONS = (1, 2)
FILES = {"header": "header.gsbc", "geometry": "geometry.gsbc", "anchors": "anchors.gsbc",
         "lod1": "lod1.gsbc", "lod2": "lod2.gsbc"}

# RGB -> YUV (BT.601 analog, spec §2.3) and its exact inverse
YUV = np.array([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])
YUV_INV = np.linalg.inv(YUV)

_ANCHOR_WEIGHT_CLASSES = 12  # RAHT contexts per column: bit length of min(w1, w2), clipped
_CAT_ALPHABET = 20  # exp-Golomb classes (bit length of the zigzag value) up to 2^19
_OCTREE_CONTEXTS = 32


# ============================================================================ parameters
@dataclass(frozen=True)
class HGSCParams:
    """The codec's parameters (spec §5); defaults = the paper's big-scene setting."""

    prune_percent: float = 66.0  # % of Gaussians REMOVED (66 big scenes, 60 small)
    volume_quantile: float = 0.8
    volume_exponent: float = 0.01
    xyz_bits: int = 15
    block_size: int = 512  # anchor KD-tree leaf (512 big / 256 small)
    lod_block_size: int = 256
    anchor_fraction: float = 0.10
    lod1_fraction: float = 0.33
    anchor_bits: int = 15  # anchor quantization: values 0..2^bits (upstream 1 << 15)
    lod_bits: int = 8  # LoD residual bits: DC, SH-rest Y, opacity, scale, rotation
    lod_bits_uv: int = 4  # LoD residual bits: SH-rest U and V
    geometry_coder: str = "octree"  # "octree" (own) | "draco" (DracoPy, optional)

    def __post_init__(self) -> None:
        if not 0.0 <= self.prune_percent < 100.0:
            raise ValueError(f"prune_percent must be in [0, 100), got {self.prune_percent}")
        if not 1 <= self.xyz_bits <= 20:
            raise ValueError(f"xyz_bits must be in 1..20, got {self.xyz_bits}")
        if not 1 <= self.anchor_bits <= 17:
            raise ValueError(f"anchor_bits must be in 1..17, got {self.anchor_bits}")
        for name in ("lod_bits", "lod_bits_uv"):
            if not 1 <= getattr(self, name) <= 16:
                raise ValueError(f"{name} must be in 1..16, got {getattr(self, name)}")
        if self.block_size < 2 or self.lod_block_size < 2:
            raise ValueError("block sizes must be >= 2")
        if not (0 < self.anchor_fraction <= 1 and 0 < self.lod1_fraction <= 1):
            raise ValueError("anchor_fraction and lod1_fraction must be in (0, 1]")
        if self.geometry_coder not in ("octree", "draco"):
            raise ValueError(f"geometry_coder must be 'octree' or 'draco', got {self.geometry_coder!r}")

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> "HGSCParams":
        known = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in params.items() if k in known}
        unknown = sorted(set(params) - known)
        if unknown:
            raise TypeError(f"unknown HGSC parameters {unknown} (known: {sorted(known)})")
        return cls(**kw)


# ============================================================================ attributes
_ROWS = 1 << 12  # rows per block of the row-wise float work (stays in cache)


def attribute_layout(sh_degree: int) -> dict[str, slice]:
    """Column groups of the attribute matrix: dc (3) | rest_y, rest_u, rest_v (K-1 each,
    channel-major as the PLY) | opacity | scale (3) | rotation (4)."""
    r = num_sh_bases(sh_degree) - 1
    o = 3 + 3 * r
    return {"dc": slice(0, 3), "rest_y": slice(3, 3 + r), "rest_u": slice(3 + r, 3 + 2 * r),
            "rest_v": slice(3 + 2 * r, o), "opacity": slice(o, o + 1), "scale": slice(o + 1, o + 4),
            "rotation": slice(o + 4, o + 8)}


def _mix3(m: np.ndarray, x: np.ndarray) -> np.ndarray:
    """out[:, c] = sum_j m[c, j] x[:, j] for x (N, 3, ...) (a colour transform per SH band)."""
    return np.stack([m[c, 0] * x[:, 0] + m[c, 1] * x[:, 1] + m[c, 2] * x[:, 2] for c in range(3)], axis=1)


def attribute_matrix(model: GaussianModel) -> np.ndarray:
    """(N, D) float32 attributes with the colour in YUV (spec §2.3, §2.6 column order)."""
    p = {k: v.detach().double().cpu().numpy() for k, v in model.params.items()}
    n = model.num_gaussians
    dc = p["sh0"].reshape(n, 3) @ YUV.T
    rest = _mix3(YUV, np.ascontiguousarray(p["shN"].transpose(0, 2, 1))).reshape(n, -1)  # channel-major
    cols = [dc, rest, p["opacities"].reshape(n, 1), p["scales"], p["quats"]]
    return np.concatenate(cols, axis=1).astype(np.float32)


class _ModelRows:
    """The parameter arrays of a GaussianModel, filled block by block from YUV attribute rows
    (the inverse of :func:`attribute_matrix`); float64 temporaries stay block-sized."""

    def __init__(self, n: int, sh_degree: int) -> None:
        self.sh_degree = sh_degree
        self.k1 = num_sh_bases(sh_degree) - 1
        self.lay = attribute_layout(sh_degree)
        self.dc = np.empty((n, 1, 3), dtype=np.float32)
        self.rest = np.empty((n, self.k1, 3), dtype=np.float32)
        self.opacities = np.empty(n, dtype=np.float32)
        self.scales = np.empty((n, 3), dtype=np.float32)
        self.quats = np.empty((n, 4), dtype=np.float32)

    def put(self, r: int, blk: np.ndarray) -> None:
        """Rows r .. r + len(blk) from the float32 YUV attribute rows ``blk``. The colour
        transform is the arithmetic of :func:`_mix3` (the same products and sums in the same
        order) for the DC too: a BLAS matmul may fuse multiply-adds and picks its kernel by
        CPU, and the decoder's output must not depend on the machine."""
        m, k1, lay = len(blk), self.k1, self.lay
        a = blk.astype(np.float64)
        d0, d1, d2 = a[:, 0], a[:, 1], a[:, 2]
        x0, x1, x2 = (np.ascontiguousarray(a[:, 3 + j * k1:3 + (j + 1) * k1]) for j in range(3))
        for c in range(3):
            self.dc[r:r + m, 0, c] = YUV_INV[c, 0] * d0 + YUV_INV[c, 1] * d1 + YUV_INV[c, 2] * d2
            if k1:
                t = YUV_INV[c, 0] * x0
                t += YUV_INV[c, 1] * x1
                t += YUV_INV[c, 2] * x2
                self.rest[r:r + m, :, c] = t
        # opacity, scales, quaternion: float32 as stored
        self.opacities[r:r + m] = blk[:, lay["opacity"].start]
        self.scales[r:r + m] = blk[:, lay["scale"]]
        self.quats[r:r + m] = blk[:, lay["rotation"]]

    def model(self, xyz: np.ndarray, device: str | torch.device) -> GaussianModel:
        def t(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)

        return GaussianModel(dict(means=t(xyz), scales=t(self.scales), quats=t(self.quats),
                                  opacities=t(self.opacities), sh0=t(self.dc), shN=t(self.rest)), self.sh_degree)


def model_from_attributes(xyz: np.ndarray, attrs: np.ndarray, sh_degree: int,
                          device: str | torch.device = "cpu", rows: np.ndarray | None = None) -> GaussianModel:
    """Inverse of :func:`attribute_matrix` (YUV -> RGB) with positions ``xyz``; ``rows`` (optional)
    takes the Gaussians ``attrs[rows]`` (in that order) without copying ``attrs`` first."""
    n = len(xyz)
    out = _ModelRows(n, sh_degree)
    for r in range(0, n, _ROWS):
        out.put(r, attrs[r:r + _ROWS] if rows is None else attrs[rows[r:r + _ROWS]])
    return out.model(xyz, device)


# ============================================================================ significance
def significance_scores(model: GaussianModel, cameras, *, backend: str = "auto",
                        volume_quantile: float = 0.8, volume_exponent: float = 0.01,
                        progress: bool = False) -> np.ndarray:
    """(N,) float64 HGSC importance (spec §2.1-2.2): summed blend weight over ``cameras`` x
    the clipped normalised volume (activated scales) to the power ``volume_exponent``."""
    from gs.train.stats import summed_blend_weights

    g = summed_blend_weights(model, cameras, backend=backend, progress=progress, desc="HGSC significance")
    g = g.detach().double().cpu().numpy()
    vol = np.exp(model.params["scales"].detach().double().sum(dim=1).cpu().numpy())
    vref = float(np.quantile(vol, volume_quantile)) if vol.size else 0.0
    vn = np.clip(vol / vref, 0.0, 1.0) if vref > 0 else np.ones_like(vol)
    return g * vn ** volume_exponent


def prune_least_significant(scores: np.ndarray, percent: float) -> np.ndarray:
    """Indices (ascending) of the Gaussians kept after removing the floor(percent % * N)
    lowest scores (ties: the earlier index goes first)."""
    n = len(scores)
    n_remove = min(int(math.floor(percent / 100.0 * n)), n - 1) if n else 0
    order = np.argsort(scores, kind="stable")
    return np.sort(order[n_remove:])


# ============================================================================ Morton codes
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
    code = np.asarray(code, dtype=np.int64)
    if bits > 21:
        raise ValueError(f"Morton codes hold at most 21 bits per axis, got {bits}")
    code = code & ((1 << (3 * bits)) - 1)
    q = np.empty((len(code), 3), dtype=np.int64)
    for axis in range(3):
        q[:, axis] = _compact3(code >> (2 - axis))
    return q


# ============================================================================ adaptive coder
# the adaptive coder (growing chunks, per-context counts) lives in gs.column_streams, which
# the decoder's worker processes import without torch
_chunk_bounds, _Plan, _adaptive = chunk_bounds, Plan, adaptive_code


def _new_encoder():
    import constriction

    return constriction.stream.queue.RangeEncoder()


def _encoder_bytes(enc) -> bytes:
    return np.asarray(enc.get_compressed(), dtype="<u4").tobytes()


def _new_decoder(data: bytes, name: str):
    import constriction

    if len(data) % 4:
        raise BitstreamError(f"{name}: range-coded stream is not a whole number of 32-bit words")
    return constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))


def _run_decode(name: str, fn, *args):
    try:
        return fn(*args)
    except BitstreamError:
        raise
    except Exception as exc:  # constriction raises on impossible streams
        raise BitstreamError(f"{name}: cannot decode ({type(exc).__name__}: {exc})") from exc


# ============================================================================ geometry
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
    enc = _new_encoder()
    for occ, ctx in octree_levels(codes, depth):
        _adaptive(enc, occ, ctx if use_context else np.zeros_like(ctx), _OCTREE_CONTEXTS, 256)
    return _encoder_bytes(enc)


def decode_octree(data: bytes, depth: int, n_points: int, name: str = "geometry",
                  use_context: bool = True) -> np.ndarray:
    """Inverse of :func:`encode_octree` -> sorted unique Morton codes."""
    if n_points == 0:
        return np.zeros(0, dtype=np.int64)
    dec = _new_decoder(data, name)
    keys = np.zeros(1, dtype=np.int64)
    ctx = np.zeros(1, dtype=np.int64)
    for _level in range(depth):
        occ = _run_decode(name, _adaptive, dec, None, ctx if use_context else np.zeros_like(ctx),
                          _OCTREE_CONTEXTS, 256)
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


def encode_geometry_draco(q: np.ndarray, bits: int) -> bytes:
    """DracoPy kd-tree point cloud coding of integer grid points (lossless on the grid: the
    grid spans [0, 2^bits - 1] and Draco quantizes with ``bits`` bits over that range)."""
    import DracoPy

    pts = np.asarray(q, dtype=np.float32)
    span = float(2 ** bits - 1)
    return bytes(DracoPy.encode(pts, quantization_bits=bits, compression_level=10, quantization_range=span,
                                quantization_origin=[0.0, 0.0, 0.0]))


def decode_geometry_draco(data: bytes, bits: int, name: str = "geometry") -> np.ndarray:
    try:
        import DracoPy
    except ImportError as exc:
        raise BitstreamError(f"{name}: geometry is Draco-coded but DracoPy is not installed") from exc
    try:
        pts = np.asarray(DracoPy.decode(data).points, dtype=np.float64)
    except Exception as exc:
        raise BitstreamError(f"{name}: cannot decode the Draco geometry ({exc})") from exc
    return np.rint(pts.reshape(-1, 3)).astype(np.int64)


# ============================================================================ partition
def _leaf_tensors(q: torch.Tensor, max_leaf: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`kd_leaves` on a (N, 3) int64 tensor, on its device; returns tensors."""
    n = len(q)
    dev = q.device
    order = torch.arange(n, device=dev)
    starts = torch.tensor([0, n], dtype=torch.int64, device=dev)
    if n == 0:
        return order, starts
    kbits = max(1, int(q.max()).bit_length())
    # one contiguous vector per axis; int32 (squares fit) moves half the bytes per level
    small = kbits <= 15 and n < 2 ** 31
    planes = [q[:, a].to(torch.int32 if small else torch.int64).contiguous() for a in range(3)]
    if small:
        order = order.int()
    while True:
        lens = starts[1:] - starts[:-1]
        split = lens > max_leaf
        if not bool(split.any()):
            return order.long(), starts
        nseg = len(lens)
        mark = torch.zeros(n, dtype=torch.int64, device=dev)
        mark[starts[1:-1]] = 1
        seg = mark.cumsum(0)
        # exact int64 segment sums (prefix sums), then the same float64 arithmetic as always
        lo, hi = starts[:-1], starts[1:]
        s1, s2 = [], []
        for x in planes:
            z = torch.zeros(1, dtype=torch.int64, device=dev)
            c1 = torch.cat([z, x.cumsum(0, dtype=torch.int64)])
            c2 = torch.cat([z, (x * x).cumsum(0, dtype=torch.int64)])
            s1.append(c1[hi] - c1[lo])
            s2.append(c2[hi] - c2[lo])
        s1d, s2d = torch.stack(s1, 1).double(), torch.stack(s2, 1).double()
        var = s2d - s1d * s1d / lens.clamp_min(1).double()[:, None]  # n * variance
        axis = var.argmax(dim=1)  # first maximum on ties, like numpy
        ax = axis[seg]
        key = torch.where(ax == 0, planes[0], torch.where(ax == 1, planes[1], planes[2]))
        if not bool(split.all()):
            key = key * split[seg]  # leaves keep their order (key 0)
        ck = (seg << kbits) | key.long()
        if (nseg << kbits) < 2 ** 31:
            ck = ck.int()  # a narrower stable (radix) sort, same order
        perm = torch.sort(ck, stable=True).indices
        order = order[perm]
        planes = [x[perm] for x in planes]
        half = lo + lens // 2
        starts = torch.unique(torch.cat([starts, half[split]]))


def kd_leaves(q: np.ndarray, max_leaf: int, device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Deterministic KD-tree blocks: split every node with more than ``max_leaf`` points along
    its axis of largest variance at the rank median (stable order). Returns ``order`` (a
    permutation of the points, leaf by leaf) and ``starts`` (leaf boundaries, len L+1)."""
    qt = torch.from_numpy(np.asarray(q, dtype=np.int64)).to(device)
    order, starts = _leaf_tensors(qt, max_leaf)
    return order.cpu().numpy(), starts.cpu().numpy()


def _fps_tensors(q: torch.Tensor, order: torch.Tensor, starts: torch.Tensor, fraction: float) -> torch.Tensor:
    """:func:`fps_select` on tensors (one device); returns the selected point indices."""
    dev = q.device
    n = len(q)
    lens = starts[1:] - starts[:-1]
    L, B = len(lens), int(lens.max())
    m = torch.clamp_min(torch.floor(fraction * lens.double()).long(), 1)
    row = torch.repeat_interleave(torch.arange(L, device=dev), lens)
    col = torch.arange(n, device=dev) - starts[:-1][row]
    idx = torch.full((L, B), -1, dtype=torch.int64, device=dev)
    idx[row, col] = order
    pts = q[idx.clamp_min(0)]
    # one contiguous (L, B) plane per axis; float64 holds the integer squared distances exactly
    planes = [pts[..., a].double().contiguous() for a in range(3)]
    invalid = idx < 0
    m_max = int(m.max())
    curs = torch.zeros((m_max, L), dtype=torch.int64, device=dev)
    # on the CPU, blocks of leaves that stay in cache; on an accelerator, all at once
    chunk = L if dev.type != "cpu" else max(1, (1 << 17) // B)
    for c0 in range(0, L, chunk):
        c1 = min(L, c0 + chunk)
        x, y, z = (p[c0:c1] for p in planes)
        nl = c1 - c0
        ar = torch.arange(nl, device=dev)
        # dist = squared distance to the nearest chosen point; -1 marks chosen and padding
        # slots, so argmax = the farthest unchosen point (first index on ties)
        dist = torch.full((nl, B), math.inf, dtype=torch.float64, device=dev)
        dist[invalid[c0:c1]] = -1.0
        d, t = torch.empty_like(dist), torch.empty_like(dist)
        cur = torch.zeros(nl, dtype=torch.int64, device=dev)
        k_max = int(m[c0:c1].max())
        for k in range(k_max):
            curs[k, c0:c1] = cur
            dist[ar, cur] = -1.0
            if k + 1 == k_max:
                break
            torch.sub(x, x[ar, cur][:, None], out=d)
            d.mul_(d)
            torch.sub(y, y[ar, cur][:, None], out=t)
            d.addcmul_(t, t)
            torch.sub(z, z[ar, cur][:, None], out=t)
            d.addcmul_(t, t)
            torch.minimum(dist, d, out=dist)
            cur = dist.argmax(dim=1)
    active = torch.arange(m_max, device=dev)[:, None] < m[None, :]
    leaf = torch.arange(L, device=dev)[None, :].expand(m_max, L)
    return idx[leaf[active], curs[active]]


def fps_select(q: np.ndarray, order: np.ndarray, starts: np.ndarray, fraction: float,
               device: str | torch.device = "cpu") -> np.ndarray:
    """Farthest point sampling in every leaf at once: max(1, floor(fraction * n_leaf)) points,
    starting from the leaf's first point, exact integer squared distances, first index on
    ties. Returns a boolean mask over the points."""
    n = len(q)
    sel = np.zeros(n, dtype=bool)
    if n == 0:
        return sel
    dev = torch.device(device)
    t = torch.from_numpy(np.asarray(q, dtype=np.int64)).to(dev)
    pick = _fps_tensors(t, torch.from_numpy(np.asarray(order, dtype=np.int64)).to(dev),
                        torch.from_numpy(np.asarray(starts, dtype=np.int64)).to(dev), fraction)
    sel[pick.cpu().numpy()] = True
    return sel


def partition(q: np.ndarray, params: HGSCParams, device: str | torch.device = "cpu") -> np.ndarray:
    """(N,) uint8 labels 0 = anchor, 1 = LoD1, 2 = LoD2 of the canonical (Morton-sorted) grid
    points (spec §2.5, §2.7); a function of the coordinates only (the same on every device)."""
    q = np.asarray(q, dtype=np.int64)
    n = len(q)
    if n == 0:
        return np.full(0, 2, dtype=np.uint8)
    dev = torch.device(device)
    qt = torch.from_numpy(q).to(dev)
    labels = torch.full((n,), 2, dtype=torch.uint8, device=dev)
    order, starts = _leaf_tensors(qt, params.block_size)
    anchors = _fps_tensors(qt, order, starts, params.anchor_fraction)
    labels[anchors] = 0
    rest = torch.nonzero(labels != 0)[:, 0]
    if len(rest):
        qr = qt[rest]
        order, starts = _leaf_tensors(qr, params.lod_block_size)
        labels[rest[_fps_tensors(qr, order, starts, params.lod1_fraction)]] = 1
    return labels.cpu().numpy()


# ============================================================================ RAHT
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


def _raht_weight_class(levels) -> np.ndarray:
    if not levels:
        return np.zeros(0, dtype=np.int64)
    wmin = np.concatenate([np.minimum(w1, w2) for _, w1, w2, _ in levels])
    cls = np.floor(np.log2(wmin)).astype(np.int64)
    return np.minimum(cls, _ANCHOR_WEIGHT_CLASSES - 1)


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
    if cat.size and cat.max() >= _CAT_ALPHABET:
        raise ValueError("coefficient too large for the class alphabet")
    plan = _Plan(np.asarray(contexts, dtype=np.int64))
    streams = []
    for c in range(u.shape[1]):
        enc = _new_encoder()
        _adaptive(enc, cat[:, c], plan.contexts, n_ctx, _CAT_ALPHABET, plan=plan)
        streams.append(_encoder_bytes(enc))
    flat_u, flat_k = u.T.ravel(), cat.T.ravel()
    mant = []
    for k in range(2, _CAT_ALPHABET):
        sel = flat_k == k
        if sel.any():
            mant.append(pack_bits(flat_u[sel] - (np.int64(1) << (k - 1)), k - 1))
    return streams, b"".join(mant)


def decode_coefficients(cat_data: bytes, mant_data: bytes, contexts: np.ndarray, n_ctx: int, n_cols: int,
                        name: str) -> np.ndarray:
    """Inverse of format 1's coefficient coding (every column's classes in one stream)."""
    dec = _new_decoder(cat_data, name)
    m = len(contexts)
    plan = _Plan(np.asarray(contexts, dtype=np.int64))
    cat = np.zeros((n_cols, m), dtype=np.uint8)  # column-major, as coded
    if m:
        for c in range(n_cols):
            _run_decode(name, _adaptive, dec, None, plan.contexts, n_ctx, _CAT_ALPHABET, 0.25, plan, cat[c])
    return coefficients_from_classes(cat, mant_data, name)


def coefficients_from_classes(cat: np.ndarray, mant_data: bytes, name: str) -> np.ndarray:
    """Decoded classes (C, M), column-major as coded, + the mantissa stream -> coefficients (M, C)."""
    n_cols, m = cat.shape
    flat_k = np.ascontiguousarray(cat).ravel()
    # class 0 = the value 0, class 1 = 1; class k >= 2: leading one 2^(k-1) + k-1 raw bits,
    # written below; the positions of each class in increasing order, from one stable sort
    flat_u = np.minimum(flat_k, 1).astype(np.int64)
    order = np.argsort(flat_k, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(flat_k, minlength=_CAT_ALPHABET))])
    pos = 0
    for k in range(2, _CAT_ALPHABET):
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


# ============================================================================ quantizers
def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    r = hi.astype(np.float64) - lo.astype(np.float64)
    return np.where(r > 0, r, 1.0)


def quantize_positions(xyz: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    levels = float(2 ** bits - 1)
    q = np.floor((xyz.astype(np.float64) - lo.astype(np.float64)) / _ranges(lo, hi) * levels + 0.5)
    return np.clip(q, 0, levels).astype(np.int64)


def dequantize_positions(q: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    span = np.where(hi > lo, hi.astype(np.float64) - lo.astype(np.float64), 0.0)
    return (q.astype(np.float64) / float(2 ** bits - 1) * span + lo.astype(np.float64)).astype(np.float32)


def quantize_columns(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, levels: int) -> np.ndarray:
    q = np.rint((v.astype(np.float64) - lo.astype(np.float64)) / _ranges(lo, hi) * levels)
    return np.clip(q, 0, levels).astype(np.int64)


def dequantize_columns(q: np.ndarray, lo: np.ndarray, hi: np.ndarray, levels: int) -> np.ndarray:
    span = np.where(hi > lo, hi.astype(np.float64) - lo.astype(np.float64), 0.0)
    return q.astype(np.float64) / levels * span + lo.astype(np.float64)


def lod_groups(sh_degree: int, params: HGSCParams) -> list[tuple[str, slice, int]]:
    """Residual groups (spec §2.8): one min/max and one bit depth per group."""
    lay = attribute_layout(sh_degree)
    out = []
    for name, sl in lay.items():
        if sl.stop > sl.start:
            out.append((name, sl, params.lod_bits_uv if name in ("rest_u", "rest_v") else params.lod_bits))
    return out


def _group_columns(groups, d: int, per_group: np.ndarray) -> np.ndarray:
    out = np.empty(d, dtype=per_group.dtype)
    for g, (_, sl, _) in enumerate(groups):
        out[sl] = per_group[g]
    return out


def lod_levels(groups) -> np.ndarray:
    """(D,) highest residual symbol of every column (2^bits - 1 of its group)."""
    d = max(sl.stop for _, sl, _ in groups)
    return _group_columns(groups, d, np.array([2 ** b - 1 for *_, b in groups], dtype=np.int64))


def lod_quantize(r: np.ndarray, groups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform quantization of residuals (n, D) with ONE float32 min/max per group (spec
    §2.8): q = round((r - min) / (max - min) * (2^b - 1)). Returns (q, min, max)."""
    n = len(r)
    g_lo = np.array([r[:, sl].min() if n else 0.0 for _, sl, _ in groups], dtype=np.float32)
    g_hi = np.array([r[:, sl].max() if n else 0.0 for _, sl, _ in groups], dtype=np.float32)
    d = r.shape[1]
    lv = lod_levels(groups).astype(np.float64)
    lo_c = _group_columns(groups, d, g_lo.astype(np.float64))
    rng_c = _group_columns(groups, d, _ranges(g_lo, g_hi))
    return np.clip(np.rint((r - lo_c) / rng_c * lv), 0, lv).astype(np.int64), g_lo, g_hi


def _lod_step(lo: np.ndarray, hi: np.ndarray, groups, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column: dequantization step (max - min) / (2^b - 1) and offset (min)."""
    levels = _group_columns(groups, d, np.array([2 ** b - 1 for *_, b in groups], dtype=np.float64))
    lo_c = _group_columns(groups, d, lo.astype(np.float64))
    hi_c = _group_columns(groups, d, hi.astype(np.float64))
    return np.where(hi_c > lo_c, hi_c - lo_c, 0.0) / levels, lo_c


def _lod_rows(pred: np.ndarray, q: np.ndarray, step: np.ndarray, lo_c: np.ndarray) -> np.ndarray:
    """float32(q * step + min + pred), in float64 (the one formula encoder and decoder use)."""
    out = np.ascontiguousarray(q).astype(np.float64)  # (from any layout: one fast pass)
    out *= step
    out += lo_c
    out += pred
    return out.astype(np.float32)


def lod_reconstruct(pred: np.ndarray, q: np.ndarray, lo: np.ndarray, hi: np.ndarray, groups) -> np.ndarray:
    """Prediction + dequantized residual (float32); the one function encoder and decoder use."""
    step, lo_c = _lod_step(lo, hi, groups, pred.shape[1])
    out = np.empty(pred.shape, dtype=np.float32)
    for r in range(0, len(pred), _ROWS):
        out[r:r + _ROWS] = _lod_rows(pred[r:r + _ROWS], q[r:r + _ROWS], step, lo_c)
    return out


def nearest_reference(ref_q: np.ndarray, query_q: np.ndarray, workers: int = -1) -> np.ndarray:
    """Index of the nearest reference grid point of every query (k = 1, spec §2.8); ``workers``
    threads for the queries (-1: every core; the answer does not depend on it)."""
    from scipy.spatial import cKDTree

    if len(query_q) == 0:
        return np.zeros(0, dtype=np.int64)
    _, idx = cKDTree(ref_q.astype(np.float64)).query(query_q.astype(np.float64), k=1, workers=workers)
    return np.asarray(idx, dtype=np.int64)


# ============================================================================ codec
def _column_result(result, name: str) -> np.ndarray:
    """The symbols of a job of :func:`submit_columns` (waits for the worker processes)."""
    try:
        return result()
    except ColumnDecodeError as exc:
        raise BitstreamError(f"{name}: {exc}") from exc


def _wait(futures) -> None:
    """Wait for every future; the first error is raised."""
    for f in futures:
        f.result()


def _sym_code(q: np.ndarray, alphabets: np.ndarray) -> bytes:
    """Residual symbols (n, d), column by column (alphabet 2^bits of the column), adaptive
    statistics fresh per column."""
    enc = _new_encoder()
    if q.size:
        plan = _Plan(np.zeros(q.shape[0], dtype=np.int64))
        for c in range(q.shape[1]):
            _adaptive(enc, q[:, c], plan.contexts, 1, int(alphabets[c]), plan=plan)
    return _encoder_bytes(enc)


def _sym_decode(data: bytes, n: int, alphabets: np.ndarray, name: str) -> np.ndarray:
    """Inverse of :func:`_sym_code`: (n, d) symbols (a transposed view of (d, n) storage)."""
    d = len(alphabets)
    dtype = np.uint8 if int(alphabets.max()) <= 256 else np.uint16
    out = np.zeros((d, n), dtype=dtype)
    if n:
        dec = _new_decoder(data, name)
        plan = _Plan(np.zeros(n, dtype=np.int64))
        for c in range(d):
            _run_decode(name, _adaptive, dec, None, plan.contexts, 1, int(alphabets[c]), 0.25, plan, out[c])
    return out.T


def render_fidelity(original: GaussianModel, decoded: GaussianModel, scene, backend: str = "auto",
                    cameras=None) -> dict[str, Any]:
    """Fidelity to the uncompressed model (the upstream protocol, spec §6): PSNR and SSIM
    between 8-bit renders of ``original`` and ``decoded`` on ``cameras`` (default: the scene's
    test views), scene background. Identical renders give PSNR = inf (reported as None with
    ``psnr_note``)."""
    from gs.eval.metrics import from_uint8, psnr, ssim, to_uint8
    from gs.render import render, resolve_backend_name

    dev = original.device
    decoded = decoded.to(dev) if decoded.device != dev else decoded
    name = resolve_backend_name(backend, dev)
    cams = list(scene.test_cameras if cameras is None else cameras)
    bg = scene.background.to(dev)
    per_psnr, per_ssim = [], []
    with torch.no_grad():
        for cam in cams:
            c = cam.to(dev)
            imgs = [from_uint8(to_uint8(render(m, c, backend=name, background=bg).image[..., :3].clamp(0, 1)))
                    .permute(2, 0, 1)[None] for m in (original, decoded)]
            per_psnr.append(float(psnr(imgs[0], imgs[1])))
            per_ssim.append(float(ssim(imgs[0], imgs[1])))
    mean_psnr = float(np.mean(per_psnr)) if per_psnr else float("nan")
    out: dict[str, Any] = {"psnr": mean_psnr if math.isfinite(mean_psnr) else None,
                           "ssim": float(np.mean(per_ssim)) if per_ssim else None,
                           "num_views": len(cams), "per_view_psnr": per_psnr, "backend": name}
    if not math.isfinite(mean_psnr):
        out["psnr_note"] = "renders identical (PSNR = inf)" if per_psnr else "no views"
    return out


class HGSCCodec(Codec):
    """HGSC codec (see the module docstring). Parameters: the fields of :class:`HGSCParams`.

    After :meth:`encode`, ``self.reconstruction`` holds the encoder's own reconstruction (what
    :meth:`decode` must return bit for bit)."""

    id = "hgsc"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.p = HGSCParams.from_dict(params)
        self.reconstruction: GaussianModel | None = None

    # ------------------------------------------------------------------ encode
    def encode(self, model: GaussianModel, out_dir: str | Path, ctx: CodecContext | None = None) -> dict[str, Any]:
        ctx = ctx or CodecContext()
        p = self.p
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        n_in = model.num_gaussians
        if n_in == 0:
            raise ValueError("HGSC cannot encode an empty model")
        stats: dict[str, Any] = {"input_num_gaussians": n_in}

        # 1. significance pruning on the training views
        if p.prune_percent > 0 and ctx.scene is not None and len(getattr(ctx.scene, "train_cameras", [])):
            scores = significance_scores(model, ctx.scene.train_cameras, backend=ctx.backend,
                                         volume_quantile=p.volume_quantile, volume_exponent=p.volume_exponent)
            keep = prune_least_significant(scores, p.prune_percent)
            stats["significance_pruning"] = f"removed {n_in - len(keep)} of {n_in} ({p.prune_percent}%)"
        else:
            keep = np.arange(n_in)
            if p.prune_percent > 0:
                warnings.warn("HGSC: no scene with training views in the codec context; significance "
                              "pruning skipped (every Gaussian is coded)", stacklevel=2)
                stats["significance_pruning"] = "skipped: no scene with training views"
            else:
                stats["significance_pruning"] = "off (prune_percent = 0)"
        attrs = attribute_matrix(model)[keep]
        xyz = model.params["means"].detach().float().cpu().numpy()[keep]

        # 2-3. 15-bit grid, merge duplicate voxels (keep the Gaussian nearest the voxel centre)
        lo, hi = xyz.min(0).astype(np.float32), xyz.max(0).astype(np.float32)
        qg = quantize_positions(xyz, lo, hi, p.xyz_bits)
        codes = morton_encode(qg, p.xyz_bits)
        centre = dequantize_positions(qg, lo, hi, p.xyz_bits)
        d2 = ((xyz.astype(np.float64) - centre) ** 2).sum(1)
        order = np.lexsort((d2, codes))
        first = np.concatenate([[True], codes[order][1:] != codes[order][:-1]])
        pick = order[first]  # canonical order = ascending Morton code
        codes, attrs = codes[pick], attrs[pick]
        q = morton_decode(codes, p.xyz_bits)
        stats["merged_duplicates"] = int(len(keep) - len(pick))
        n = len(codes)

        if p.geometry_coder == "octree":
            geom = encode_octree(codes, p.xyz_bits)
        else:
            geom = encode_geometry_draco(q, p.xyz_bits)
            back = np.sort(morton_encode(decode_geometry_draco(geom, p.xyz_bits), p.xyz_bits))
            if not np.array_equal(back, codes):
                raise RuntimeError("Draco geometry coding was not lossless on the grid")

        # 4. partition (the decoder rebuilds it from q)
        labels = partition(q, p, ctx.device)

        # 5. anchors: per-column quantization + integer RAHT + coefficient coding
        levels_a = 2 ** p.anchor_bits
        ia = np.flatnonzero(labels == 0)
        a_vals = attrs[ia]
        a_lo, a_hi = a_vals.min(0).astype(np.float32), a_vals.max(0).astype(np.float32)
        a_q = quantize_columns(a_vals, a_lo, a_hi, levels_a)
        tree = raht_structure(codes[ia])
        highs, dc = raht_forward(a_q, tree)
        cat_streams, mant_s = encode_coefficients(highs, _raht_weight_class(tree), _ANCHOR_WEIGHT_CLASSES)
        rec = np.empty_like(attrs)
        rec[ia] = dequantize_columns(a_q, a_lo, a_hi, levels_a).astype(np.float32)

        # 6. LoD1 from anchors, LoD2 from anchors + reconstructed LoD1
        groups = lod_groups(model.sh_degree, p)
        lod_arrays = {}
        for lod in (1, 2):
            il = np.flatnonzero(labels == lod)
            ir = np.flatnonzero(labels < lod)
            pred = rec[ir[nearest_reference(q[ir], q[il])]]
            lq, g_lo, g_hi = lod_quantize(attrs[il].astype(np.float64) - pred.astype(np.float64), groups)
            rec[il] = lod_reconstruct(pred, lq, g_lo, g_hi, groups)
            streams = [encode_column(lq[:, c], int(a)) for c, a in enumerate(lod_levels(groups) + 1)]
            lod_arrays[lod] = {"min": g_lo, "max": g_hi, "symbols": b"".join(streams),
                               "symbol_sizes": np.array([len(b) for b in streams], dtype="<u4")}

        # write the files
        meta_common = {"format": "hgsc", "version": FORMAT_VERSION}
        sizes = {}
        sizes["header"] = write_container(out_dir / FILES["header"], {}, {
            **meta_common, "num_points": n, "sh_degree": model.sh_degree,
            "params": {k: getattr(p, k) for k in ("xyz_bits", "block_size", "lod_block_size", "anchor_fraction",
                                                  "lod1_fraction", "anchor_bits", "lod_bits", "lod_bits_uv",
                                                  "geometry_coder")}})
        sizes["geometry"] = write_container(out_dir / FILES["geometry"], {"bbox": np.stack([lo, hi]), "stream": geom},
                                            meta_common)
        sizes["anchors"] = write_container(out_dir / FILES["anchors"], {
            "min": a_lo, "max": a_hi, "dc": dc.astype("<i4"), "classes": b"".join(cat_streams),
            "class_sizes": np.array([len(b) for b in cat_streams], dtype="<u4"), "mantissa": mant_s}, meta_common)
        for lod in (1, 2):
            sizes[f"lod{lod}"] = write_container(out_dir / FILES[f"lod{lod}"], lod_arrays[lod], meta_common)

        self.reconstruction = self._assemble(q, labels, rec, lo, hi, p.xyz_bits, model.sh_degree, ctx.device)
        counts = {name: int((labels == i).sum()) for i, name in enumerate(("anchors", "lod1", "lod2"))}
        stats.update({
            "size_bytes": int(sum(sizes.values())),
            "components": sizes,
            "num_gaussians": n,
            "partition": counts,
            "geometry_bits_per_point": 8.0 * sizes["geometry"] / max(n, 1),
            "geometry_coder": p.geometry_coder,
            "params": {k: getattr(p, k) for k in HGSCParams.__dataclass_fields__},
        })
        return stats

    @staticmethod
    def _assemble(q: np.ndarray, labels: np.ndarray, rec: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  bits: int, sh_degree: int, device: str | torch.device) -> GaussianModel:
        """Anchors, LoD1, LoD2 (each in Morton order) -> a standard GaussianModel (RGB SH)."""
        order = np.argsort(labels, kind="stable")
        xyz = dequantize_positions(q[order], lo, hi, bits)
        return model_from_attributes(xyz, rec, sh_degree, device, rows=order)

    # ------------------------------------------------------------------ decode
    def decode(self, in_dir: str | Path, device: str | torch.device = "cpu") -> GaussianModel:
        in_dir = Path(in_dir)
        files = {k: in_dir / v for k, v in FILES.items()}
        data = {k: read_container(path) for k, path in files.items()}

        def meta_of(key: str) -> dict[str, Any]:
            meta = data[key][1]
            if meta.get("format") != "hgsc":
                raise BitstreamError(f"{files[key]}: not an HGSC bitstream (format {meta.get('format')!r})")
            if meta.get("version") not in READ_VERSIONS:
                raise BitstreamError(f"{files[key]}: HGSC format version {meta.get('version')}, "
                                     f"this decoder reads {', '.join(map(str, READ_VERSIONS))}")
            return meta

        def arr(key: str, name: str, dtype: str | None = None, shape: tuple | None = None):
            a = data[key][0].get(name)
            if a is None:
                raise BitstreamError(f"{files[key]}: array '{name}' is missing")
            if dtype == "bytes":
                if not isinstance(a, bytes):
                    raise BitstreamError(f"{files[key]}: array '{name}' should be a byte stream")
                return a
            if isinstance(a, bytes) or (dtype and a.dtype != np.dtype(dtype)) or (shape and a.shape != shape):
                got = "bytes" if isinstance(a, bytes) else f"{a.dtype}{list(a.shape)}"
                raise BitstreamError(f"{files[key]}: array '{name}' is {got}, expected {dtype}{list(shape or ())}")
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise BitstreamError(f"{files[key]}: array '{name}' holds non-finite values")
            return a

        head = meta_of("header")
        for key in FILES:
            meta_of(key)
        try:
            n, deg = int(head["num_points"]), int(head["sh_degree"])
            p = HGSCParams.from_dict(dict(head["params"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BitstreamError(f"{files['header']}: malformed HGSC header ({exc})") from exc
        if n < 1 or not 0 <= deg <= 4:
            raise BitstreamError(f"{files['header']}: bad point count {n} or SH degree {deg}")
        d = 3 * num_sh_bases(deg) + 8

        # geometry
        bbox = arr("geometry", "bbox", "<f4", (2, 3))
        lo, hi = bbox[0], bbox[1]
        stream = arr("geometry", "stream", "bytes")
        gname = str(files["geometry"])
        if p.geometry_coder == "octree":
            codes = decode_octree(stream, p.xyz_bits, n, gname)
        else:
            qd = decode_geometry_draco(stream, p.xyz_bits, gname)
            codes = np.unique(morton_encode(np.clip(qd, 0, 2 ** p.xyz_bits - 1), p.xyz_bits))
            if len(codes) != n:
                raise BitstreamError(f"{gname}: Draco geometry holds {len(codes)} points, header says {n}")
        q = morton_decode(codes, p.xyz_bits)
        labels = partition(q, p, device)
        rows = [np.flatnonzero(labels == i) for i in range(3)]
        na, n1 = len(rows[0]), len(rows[1])
        # rec holds the references only (anchors, then LoD1: the output order); LoD2 rows go
        # straight from prediction + residual into the output
        slot = np.empty(n, dtype=np.int64)
        slot[rows[0]] = np.arange(na)
        slot[rows[1]] = na + np.arange(n1)

        def references(lod: int) -> np.ndarray:
            """The predictor (a row of rec) of every point of LoD ``lod``."""
            ir = np.flatnonzero(labels < lod)  # the encoder's reference set and order
            return slot[ir[nearest_reference(q[ir], q[rows[lod]], workers=usable_cores())]]

        # the two nearest-neighbour searches (scipy, without the GIL) run in threads while
        # this thread does the range decoding (worker processes) and the anchors; the row
        # blocks of the float work are independent and run in the same pool (numpy releases
        # the GIL in its loops)
        with ThreadPoolExecutor(max_workers=usable_cores() + 2) as pool:
            refs = [pool.submit(references, lod) for lod in (1, 2)]

            # every range-coded column stream (anchor classes, LoD residuals) in one pool call;
            # format 1 (and early format 2 anchors) hold one stream for all columns instead
            aname = str(files["anchors"])
            a_lo, a_hi = arr("anchors", "min", "<f4", (d,)), arr("anchors", "max", "<f4", (d,))
            dc = arr("anchors", "dc", "<i4", (1, d)).astype(np.int64)
            tree = raht_structure(codes[rows[0]])
            a_ctx = _raht_weight_class(tree)
            groups = lod_groups(deg, p)
            lv = lod_levels(groups)

            def column_streams(key: str, name: str, sizes: str, cols: int) -> list[bytes]:
                try:
                    return split_streams(arr(key, name, "bytes"), arr(key, sizes, "<u4", (cols,)))
                except ValueError as exc:
                    raise BitstreamError(f"{files[key]}: {exc}") from exc

            jobs, owners = [], []
            if "class_sizes" in data["anchors"][0]:
                jobs.append((column_streams("anchors", "classes", "class_sizes", d), len(a_ctx),
                             [_CAT_ALPHABET] * d, a_ctx, _ANCHOR_WEIGHT_CLASSES))
                owners.append("anchors")
            for lod in (1, 2):
                if "symbol_sizes" in data[f"lod{lod}"][0]:
                    jobs.append((column_streams(f"lod{lod}", "symbols", "symbol_sizes", len(lv)), len(rows[lod]), lv + 1))
                    owners.append(f"lod{lod}")
            # the worker processes decode in the background: the anchors (their job first) are
            # reconstructed while the LoD residual columns are still being decoded
            decoded = dict(zip(owners, submit_columns(jobs)))

            # anchors
            if "anchors" in decoded:
                highs = coefficients_from_classes(_column_result(decoded.pop("anchors"), aname).T,
                                                  arr("anchors", "mantissa", "bytes"), aname)
            else:
                highs = decode_coefficients(arr("anchors", "classes", "bytes"), arr("anchors", "mantissa", "bytes"),
                                            a_ctx, _ANCHOR_WEIGHT_CLASSES, d, aname)
            a_q = raht_inverse(highs, dc, tree)
            del highs, tree
            levels_a = 2 ** p.anchor_bits
            if a_q.min() < 0 or a_q.max() > levels_a:
                raise BitstreamError(f"{aname}: decoded anchor values out of range (corrupt stream)")
            rec = np.empty((na + n1, d), dtype=np.float32)
            rec[:na] = dequantize_columns(a_q, a_lo, a_hi, levels_a).astype(np.float32)
            del a_q
            out = _ModelRows(n, deg)
            tasks = [pool.submit(out.put, r, rec[r:min(r + _ROWS, na)]) for r in range(0, na, _ROWS)]

            def residuals(lod: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                """LoD ``lod``'s residual symbols (n, d), dequantization steps and offsets."""
                key = f"lod{lod}"
                g_lo = arr(key, "min", "<f4", (len(groups),))
                g_hi = arr(key, "max", "<f4", (len(groups),))
                lq = _column_result(decoded[key], str(files[key])) if key in decoded else _sym_decode(
                    arr(key, "symbols", "bytes"), len(rows[lod]), lv + 1, str(files[key]))
                return (lq, *_lod_step(g_lo, g_hi, groups, d))

            # LoD1 (the references of LoD2) into rec, then into the output; LoD2 straight
            # into the output (its residuals may still be decoding while LoD1 runs)
            q1, step1, lo1 = residuals(1)
            ref1 = refs[0].result()

            def lod1_rows(r: int) -> None:
                e = min(r + _ROWS, n1)
                rec[na + r:na + e] = _lod_rows(rec[ref1[r:e]], q1[r:e], step1, lo1)
                out.put(na + r, rec[na + r:na + e])

            lod1 = [pool.submit(lod1_rows, r) for r in range(0, n1, _ROWS)]
            q2, step2, lo2 = residuals(2)
            ref2 = refs[1].result()
            _wait(lod1)

            def lod2_rows(r: int) -> None:
                e = min(r + _ROWS, n - na - n1)
                out.put(na + n1 + r, _lod_rows(rec[ref2[r:e]], q2[r:e], step2, lo2))

            tasks += [pool.submit(lod2_rows, r) for r in range(0, n - na - n1, _ROWS)]
            _wait(tasks)
        order = np.concatenate(rows)  # anchors, LoD1, LoD2, as _assemble
        return out.model(dequantize_positions(q[order], lo, hi, p.xyz_bits), device)


__all__ = ["HGSCCodec", "HGSCParams", "FILES", "attribute_matrix", "model_from_attributes", "significance_scores",
           "prune_least_significant", "morton_encode", "morton_decode", "encode_octree", "decode_octree",
           "kd_leaves", "fps_select", "partition", "raht_structure", "raht_forward", "raht_inverse",
           "render_fidelity"]


# ============================================================================ method spec
SPEC = MethodSpec(
    id="hgsc", kind="codec", title="HGSC: hierarchical Gaussian splatting compression", spec="methods/hgsc.md",
    codec=HGSCCodec, order=50,
    params=param_schema(
        HGSCParams,
        prune_percent=(0, 100), volume_quantile=(0, 1), volume_exponent=(0, None), xyz_bits=(1, 20),
        block_size=(2, None), lod_block_size=(2, None), anchor_fraction=(0, 1), lod1_fraction=(0, 1),
        anchor_bits=(1, 17), lod_bits=(1, 16), lod_bits_uv=(1, 16), geometry_coder=["octree", "draco"],
    ),
    # the paper's big-scene setting (Mip-NeRF 360, T&T, DB: run_big_scenes.py)
    defaults={"prune_percent": 66.0, "block_size": 512, "lod_bits": 8, "lod_bits_uv": 4},
    # the RD sweep: prune percentage (REMOVED) and LoD residual bit depths;
    # "small_scenes" = the paper's other setting (BungeeNeRF, DyMVHumans: run_small_scenes.py)
    # "p0_b10" / "p20": little or no significance pruning, for scenes where most Gaussians
    # matter (forward-facing LLFF fern loses 5.6 dB at 66 %, nearly all of it from the pruning)
    variants={
        "p0_b10": {"prune_percent": 0.0, "lod_bits": 10, "lod_bits_uv": 6},
        "p20": {"prune_percent": 20.0},
        "p40_b10": {"prune_percent": 40.0, "lod_bits": 10, "lod_bits_uv": 6},
        "p50": {"prune_percent": 50.0},
        "small_scenes": {"prune_percent": 60.0, "block_size": 256},
        "default": {},
        "p75_b6": {"prune_percent": 75.0, "lod_bits": 6, "lod_bits_uv": 3},
        "p85_b5": {"prune_percent": 85.0, "lod_bits": 5, "lod_bits_uv": 3},
    },
    default_variant="default",
)
