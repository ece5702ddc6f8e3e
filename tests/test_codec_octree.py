"""Morton codes and the lossless octree geometry coder (gs.codecs.octree)."""

import numpy as np
import pytest

from codec_helpers import grid_points

from gs.codecs.base import BitstreamError
from gs.codecs.octree import decode_octree, encode_octree, morton_decode, morton_encode


def test_morton_roundtrip_and_order():
    rng = np.random.default_rng(0)
    q = rng.integers(0, 2 ** 15, size=(1000, 3))
    assert np.array_equal(morton_decode(morton_encode(q, 15), 15), q)
    # a node's children share its prefix: codes >> 3 = the parent's code on the coarser grid
    assert np.array_equal(morton_encode(q, 15) >> 3, morton_encode(q >> 1, 14))


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


def test_octree_geometry_is_lossless():
    codes, _ = grid_points(5000, seed=2)
    data = encode_octree(codes, 15)
    assert np.array_equal(decode_octree(data, 15, len(codes)), codes)
    # dense, structured input codes much better than 45 bits per point
    x, y = np.meshgrid(np.arange(64), np.arange(64))
    plane = np.stack([x.ravel(), y.ravel(), (x.ravel() // 3)], 1) + 1000
    pcodes = np.unique(morton_encode(plane, 15))
    pdata = encode_octree(pcodes, 15)
    assert np.array_equal(decode_octree(pdata, 15, len(pcodes)), pcodes)
    assert 8 * len(pdata) / len(pcodes) < 4.0
    with pytest.raises(BitstreamError, match="geometry"):
        decode_octree(data, 15, len(codes) + 1)
