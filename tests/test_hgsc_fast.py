"""HGSC's vectorised building blocks against plain per-leaf / per-bit reference implementations
written from the spec (KD split at the rank median, FPS from the leaf's first point, Morton bit
interleave, fixed-width bit packing), and round trips through the wider symbol alphabets."""

import warnings

import numpy as np
import pytest
import torch

from gs.codecs.entropy import pack_bits, unpack_bits
from gs.methods.hgsc import (
    HGSCCodec,
    _adaptive,
    _encoder_bytes,
    _new_decoder,
    _new_encoder,
    fps_select,
    kd_leaves,
    morton_decode,
    morton_encode,
)
from gs.model import GaussianModel


def ref_kd(q, idx, max_leaf):
    """Depth-first reference: split at the rank median along the axis of largest variance
    (n * variance = sum x^2 - (sum x)^2 / n, first axis on ties), stable order."""
    if len(idx) <= max_leaf:
        return [idx]
    pts = q[idx]
    s1 = pts.sum(0).astype(np.float64)
    s2 = (pts * pts).sum(0).astype(np.float64)
    axis = int(np.argmax(s2 - s1 * s1 / len(idx)))
    idx = idx[np.argsort(pts[:, axis], kind="stable")]
    half = len(idx) // 2
    return ref_kd(q, idx[:half], max_leaf) + ref_kd(q, idx[half:], max_leaf)


def ref_fps(q, leaf, m):
    """Farthest point sampling in one leaf from its first point, first index on ties."""
    pts = q[leaf]
    chosen = np.zeros(len(leaf), dtype=bool)
    dist = np.full(len(leaf), np.iinfo(np.int64).max)
    cur = 0
    for _ in range(m):
        chosen[cur] = True
        dist = np.minimum(dist, ((pts - pts[cur]) ** 2).sum(1))
        cur = int(np.argmax(np.where(chosen, -1, dist)))
    return leaf[chosen]


@pytest.mark.parametrize("duplicates", [False, True])
def test_kd_leaves_and_fps_match_the_reference(duplicates):
    rng = np.random.default_rng(5)
    q = rng.integers(0, 2 ** 15, size=(1500, 3))
    q[:, 2] //= 64  # a flat axis: many equal keys, so the tie order matters
    if duplicates:
        q[700:900] = q[0]
    order, starts = kd_leaves(q, 100)
    leaves = ref_kd(q, np.arange(len(q)), 100)
    assert np.array_equal(order, np.concatenate(leaves))
    assert np.array_equal(starts, np.concatenate([[0], np.cumsum([len(lf) for lf in leaves])]))
    sel = fps_select(q, order, starts, 0.2)
    want = np.zeros(len(q), dtype=bool)
    for lf in leaves:
        want[ref_fps(q, lf, max(1, int(np.floor(0.2 * len(lf)))))] = True
    assert np.array_equal(sel, want)


def test_morton_matches_the_bitwise_interleave():
    rng = np.random.default_rng(6)
    for bits in (1, 5, 15, 21):
        q = rng.integers(0, 2 ** bits, size=(500, 3))
        want = np.zeros(len(q), dtype=np.int64)
        for b in range(bits):
            for axis in range(3):
                want |= ((q[:, axis] >> b) & 1) << (3 * b + 2 - axis)
        assert np.array_equal(morton_encode(q, bits), want)
        assert np.array_equal(morton_decode(want, bits), q)


@pytest.mark.parametrize("bits", [1, 3, 7, 8, 13, 19, 25, 26, 32, 57, 58, 64])  # 25 | 26: 32- | 64-bit words
def test_unpack_bits_inverts_pack_bits(bits):
    rng = np.random.default_rng(bits)
    for n in (0, 1, 9, 1001):
        v = rng.integers(0, 2 ** min(bits, 62), size=n, dtype=np.int64)
        data = pack_bits(v, bits)
        # the MSB-first layout: the first value's top bit is the first bit of the stream
        if n and bits <= 8:
            assert data[0] >> (8 - bits) == v[0]
        assert np.array_equal(unpack_bits(data, n, bits), v)


def test_adaptive_coder_round_trip_with_and_without_contexts():
    rng = np.random.default_rng(7)
    n = 70000  # several chunks
    ctx = rng.integers(0, 5, n)
    sym = np.minimum(rng.geometric(0.3, n) - 1 + ctx, 19)
    zeros = np.zeros(n, dtype=np.int64)
    enc = _new_encoder()
    _adaptive(enc, sym, ctx, 5, 20)
    _adaptive(enc, sym, zeros, 1, 20)
    dec = _new_decoder(_encoder_bytes(enc), "test")
    assert np.array_equal(_adaptive(dec, None, ctx, 5, 20), sym)
    out = np.zeros(n, dtype=np.uint8)
    _adaptive(dec, None, zeros, 1, 20, out=out)
    assert np.array_equal(out, sym)


def test_wide_lod_symbols_round_trip_bit_exactly(tmp_path):
    """LoD residuals with more than 8 bits (uint16 symbol storage in the decoder)."""
    g = torch.Generator().manual_seed(1)
    n = 3000
    m = GaussianModel(dict(means=torch.rand(n, 3, generator=g), scales=torch.randn(n, 3, generator=g) - 3,
                           quats=torch.randn(n, 4, generator=g), opacities=torch.randn(n, generator=g),
                           sh0=torch.randn(n, 1, 3, generator=g), shN=torch.randn(n, 3, 3, generator=g) * 0.1), 1)
    codec = HGSCCodec(lod_bits=11, lod_bits_uv=9, block_size=128, lod_block_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        codec.encode(m, tmp_path)
    dec = HGSCCodec().decode(tmp_path)
    assert dec.num_gaussians == codec.reconstruction.num_gaussians
    for k in dec.params:
        assert torch.equal(dec.params[k], codec.reconstruction.params[k]), k


def test_anchor_classes_per_column_and_format_1_single_stream_decode_alike():
    """Anchor RAHT coefficients: format 2 codes each column's classes as its own stream (decoded
    by gs.column_streams, in worker processes when large); format 1 coded all columns in one
    stream with the same statistics. Both decode to the coefficients."""
    from gs.column_streams import decode_columns
    from gs.methods.hgsc import (_CAT_ALPHABET, _Plan, coefficients_from_classes, decode_coefficients,
                                 encode_coefficients)
    from gs.methods.hgsc import _bit_length, _zigzag

    rng = np.random.default_rng(2)
    m, d, n_ctx = 3000, 5, 4
    coeffs = np.round(rng.laplace(0, rng.uniform(1, 500, d), (m, d))).astype(np.int64)
    ctx = rng.integers(0, n_ctx, m)
    streams, mant = encode_coefficients(coeffs, ctx, n_ctx)
    assert len(streams) == d
    for workers in (1, 2):
        (cat,) = decode_columns([(streams, m, [_CAT_ALPHABET] * d, ctx, n_ctx)], workers=workers)
        assert np.array_equal(coefficients_from_classes(cat.T, mant, "anchors"), coeffs)
    # format 1: the same classes, every column in turn in one stream
    enc = _new_encoder()
    plan = _Plan(ctx)
    cls = _bit_length(_zigzag(coeffs))
    for c in range(d):
        _adaptive(enc, cls[:, c], plan.contexts, n_ctx, _CAT_ALPHABET, plan=plan)
    old = decode_coefficients(_encoder_bytes(enc), mant, ctx, n_ctx, d, "anchors")
    assert np.array_equal(old, coeffs)
