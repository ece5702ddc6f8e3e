"""The shared bitstream container and entropy-coding helpers (gs.codecs.container / entropy)."""

import numpy as np
import pytest

from gs.codecs.base import BitstreamError
from gs.codecs.container import parse_container, read_container, write_container
from gs.codecs.entropy import (
    available_methods,
    bits_for,
    compress_bytes,
    decode_symbols,
    decompress_bytes,
    encode_symbols,
    pack_bits,
    symbols_method,
    unpack_bits,
)


def _arrays():
    rng = np.random.default_rng(0)
    return {
        "xyz": rng.standard_normal((17, 3)).astype(np.float32),
        "idx": rng.integers(0, 300, 17).astype(np.uint16),
        "blob": b"\x00\x01hello",
        "empty": np.zeros((0, 4), np.float64),
        "scalar": np.array(3, np.int64),
    }


def test_container_round_trip(tmp_path):
    arrays = _arrays()
    meta = {"format": "x", "n": 17, "nested": {"a": [1, 2]}}
    size = write_container(tmp_path / "c.gsbc", arrays, meta)
    assert size == (tmp_path / "c.gsbc").stat().st_size
    got, m = read_container(tmp_path / "c.gsbc")
    assert m == meta
    assert list(got) == list(arrays)
    assert got["blob"] == arrays["blob"]
    for k in ("xyz", "idx", "empty", "scalar"):
        assert got[k].dtype == arrays[k].dtype and got[k].shape == arrays[k].shape
        assert np.array_equal(got[k], arrays[k])


def test_container_every_truncation_and_byte_flip_is_detected(tmp_path):
    path = tmp_path / "c.gsbc"
    write_container(path, _arrays(), {"k": 1})
    data = path.read_bytes()
    for cut in range(len(data)):
        with pytest.raises(BitstreamError):
            parse_container(data[:cut], "c.gsbc")
    for pos in range(len(data)):
        bad = bytearray(data)
        bad[pos] ^= 0x41
        with pytest.raises(BitstreamError):
            parse_container(bytes(bad), "c.gsbc")
    with pytest.raises(BitstreamError, match="trailing"):
        parse_container(data + b"\0", "c.gsbc")


def test_container_errors_name_the_file(tmp_path):
    path = tmp_path / "model.gsbc"
    write_container(path, _arrays())
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(BitstreamError, match=r"model\.gsbc.*truncated"):
        read_container(path)
    with pytest.raises(BitstreamError, match=r"missing\.gsbc.*missing"):
        read_container(tmp_path / "missing.gsbc")
    (tmp_path / "junk.gsbc").write_bytes(b"PK\x03\x04 not ours at all")
    with pytest.raises(BitstreamError, match=r"junk\.gsbc.*magic"):
        read_container(tmp_path / "junk.gsbc")


@pytest.mark.parametrize("bits", [1, 3, 8, 12, 14, 17])
def test_pack_bits_round_trip_and_size(bits):
    rng = np.random.default_rng(bits)
    v = rng.integers(0, 2**bits, 1001)
    packed = pack_bits(v, bits)
    assert len(packed) == (1001 * bits + 7) // 8
    assert np.array_equal(unpack_bits(packed, 1001, bits), v)


def test_pack_bits_is_msb_first():
    assert pack_bits(np.array([1, 2]), 4) == bytes([0x12])
    assert bits_for(4096) == 12 and bits_for(1024) == 10 and bits_for(1) == 1 and bits_for(1000) == 10


@pytest.mark.parametrize("method", ["fixed", "zlib", "lzma", "ans", None])
def test_symbols_round_trip_every_method(method):
    rng = np.random.default_rng(1)
    # skewed: some codes far more frequent, as VQ indices are
    s = np.minimum(rng.geometric(0.01, 5000) - 1, 4095)
    data = encode_symbols(s, 4096, methods=None if method is None else [method])
    if method is not None:
        assert symbols_method(data) == method
    assert np.array_equal(decode_symbols(data, 5000, 4096), s)


def test_measured_best_beats_fixed_width_on_skewed_symbols():
    rng = np.random.default_rng(2)
    s = np.minimum(rng.geometric(0.01, 20000) - 1, 4095)
    best = encode_symbols(s, 4096)
    fixed = encode_symbols(s, 4096, methods=["fixed"])
    assert len(fixed) - 26 == 20000 * 12 // 8
    assert len(best) < 0.8 * len(fixed)
    assert "ans" in available_methods()


def test_symbols_edge_cases():
    assert decode_symbols(encode_symbols(np.zeros(0, int), 5), 0, 5).size == 0
    assert np.array_equal(decode_symbols(encode_symbols(np.zeros(7, int), 1), 7, 1), np.zeros(7))
    with pytest.raises(ValueError):
        encode_symbols(np.array([5]), 5)


@pytest.mark.parametrize("method", ["fixed", "lzma", "ans"])
def test_corrupt_symbol_streams_raise(method):
    rng = np.random.default_rng(3)
    s = rng.integers(0, 50, 400)
    data = encode_symbols(s, 64, methods=[method])
    for cut in range(0, len(data), max(1, len(data) // 40)):
        with pytest.raises(BitstreamError, match="idx.bin"):
            decode_symbols(data[:cut], 400, 64, name="idx.bin")
    for pos in range(0, len(data), max(1, len(data) // 60)):
        bad = bytearray(data)
        bad[pos] ^= 0x10
        with pytest.raises(BitstreamError):
            decode_symbols(bytes(bad), 400, 64)
    with pytest.raises(BitstreamError, match="expected 401"):
        decode_symbols(data, 401, 64)
    with pytest.raises(BitstreamError, match="alphabet"):
        decode_symbols(data, 400, 65)


def test_compress_bytes_round_trip_and_corruption():
    rng = np.random.default_rng(4)
    floats = (rng.standard_normal(3000) * 0.01 + 1).astype(np.float32)
    blob = compress_bytes(floats, element_size=4)
    assert len(blob) < floats.nbytes
    assert np.array_equal(np.frombuffer(decompress_bytes(blob), np.float32), floats)
    noise = rng.bytes(500)  # incompressible: stored raw, + a small header only
    assert len(compress_bytes(noise)) <= 500 + 23
    assert decompress_bytes(compress_bytes(noise)) == noise
    for pos in range(0, len(blob), 37):
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        with pytest.raises(BitstreamError, match="cb"):
            decompress_bytes(bytes(bad), name="cb")
    with pytest.raises(BitstreamError):
        decompress_bytes(blob[:-1])


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
