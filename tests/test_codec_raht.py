"""Integer RAHT and the coding of its coefficients (gs.codecs.raht)."""

import numpy as np

from codec_helpers import grid_points

from gs.codecs.column_streams import Plan, adaptive_code, decode_columns, encoder_bytes, new_encoder
from gs.codecs.raht import (
    CAT_ALPHABET,
    _bit_length,
    _zigzag,
    coefficients_from_classes,
    decode_coefficients,
    encode_coefficients,
    raht_forward,
    raht_inverse,
    raht_structure,
    raht_weight_class,
)


def test_raht_is_exact_on_integers_and_decorrelates():
    codes, q = grid_points(3000, bits=8, seed=1)
    tree = raht_structure(codes)
    rng = np.random.default_rng(1)
    vals = rng.integers(0, 32769, size=(len(codes), 5))
    highs, dc = raht_forward(vals, tree)
    assert highs.shape == (len(codes) - 1, 5) and dc.shape == (1, 5)
    assert np.array_equal(raht_inverse(highs, dc, tree), vals)
    # a constant signal has only a DC coefficient; a smooth one has small highs
    const = np.full((len(codes), 1), 1234)
    h, d = raht_forward(const, tree)
    assert not h.any() and d[0, 0] == 1234
    smooth = (q.sum(1, keepdims=True) * 20).astype(np.int64)
    h, _ = raht_forward(smooth, tree)
    assert np.abs(h).mean() < 0.2 * np.abs(smooth - smooth.mean()).mean()
    assert np.array_equal(raht_inverse(h, raht_forward(smooth, tree)[1], tree), smooth)


def test_raht_inverse_edge_cases_and_large_weights():
    # one point (no levels), two points, and signed values with large weights (the in-place
    # inverse divides in float64: exact while |w2 * h| < 2^53)
    for codes in (np.array([5]), np.array([2, 3]), np.arange(0, 200_000, 3)):
        tree = raht_structure(codes)
        vals = np.random.default_rng(len(codes)).integers(-(2 ** 20), 2 ** 20, size=(len(codes), 2))
        highs, dc = raht_forward(vals, tree)
        assert np.array_equal(raht_inverse(highs, dc, tree), vals)


def test_weight_classes_are_the_bit_length_of_the_lighter_subtree():
    tree = raht_structure(np.arange(64))  # a full binary tree: weights 1, 2, 4, ... per level
    cls = raht_weight_class(tree, 4)
    assert len(cls) == 63
    assert np.array_equal(np.unique(cls), [0, 1, 2, 3])  # 2^3, 2^4, 2^5 clipped to class 3
    assert (cls == 0).sum() == 32 and (cls == 3).sum() == 7


def test_anchor_classes_per_column_and_format_1_single_stream_decode_alike():
    """Anchor RAHT coefficients: format 2 codes each column's classes as its own stream (decoded
    by gs.codecs.column_streams, in worker processes when large); format 1 coded all columns in one
    stream with the same statistics. Both decode to the coefficients."""
    rng = np.random.default_rng(2)
    m, d, n_ctx = 3000, 5, 4
    coeffs = np.round(rng.laplace(0, rng.uniform(1, 500, d), (m, d))).astype(np.int64)
    ctx = rng.integers(0, n_ctx, m)
    streams, mant = encode_coefficients(coeffs, ctx, n_ctx)
    assert len(streams) == d
    for workers in (1, 2):
        (cat,) = decode_columns([(streams, m, [CAT_ALPHABET] * d, ctx, n_ctx)], workers=workers)
        assert np.array_equal(coefficients_from_classes(cat.T, mant, "anchors"), coeffs)
    # format 1: the same classes, every column in turn in one stream
    enc = new_encoder()
    plan = Plan(ctx)
    cls = _bit_length(_zigzag(coeffs))
    for c in range(d):
        adaptive_code(enc, cls[:, c], plan.contexts, n_ctx, CAT_ALPHABET, plan=plan)
    old = decode_coefficients(encoder_bytes(enc), mant, ctx, n_ctx, d, "anchors")
    assert np.array_equal(old, coeffs)
