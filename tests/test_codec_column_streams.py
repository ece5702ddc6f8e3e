"""Independent column streams (gs.codecs.column_streams): the adaptive coder, round trips, worker
processes, errors."""

from __future__ import annotations

import numpy as np
import pytest

from gs.codecs.column_streams import (
    adaptive_code,
    decode_column,
    decode_columns,
    decode_single_stream,
    encode_column,
    encode_single_stream,
    encoder_bytes,
    new_decoder,
    new_encoder,
    split_streams,
)


def _columns(seed: int, n: int, alphabets):
    rng = np.random.default_rng(seed)
    # peaked like LoD residuals: most symbols near the middle of the alphabet
    return [np.clip(np.round(rng.normal(a / 2, a / 10, n)), 0, a - 1).astype(np.int64) for a in alphabets]


@pytest.mark.parametrize("n", [0, 1, 300, 70_000])
def test_column_round_trip(n):
    for a in (2, 16, 256, 1024):
        (col,) = _columns(n + a, n, [a])
        out = decode_column(encode_column(col, a), n, a)
        assert out.dtype == (np.uint8 if a <= 256 else np.uint16)
        assert np.array_equal(out.astype(np.int64), col)


def test_worker_processes_decode_the_same_symbols():
    alphabets = [16, 256, 64]
    jobs, want = [], []
    for j, n in enumerate((5000, 12_345)):
        cols = _columns(j, n, alphabets)
        jobs.append(([encode_column(c, a) for c, a in zip(cols, alphabets)], n, alphabets))
        want.append(np.stack(cols, 1))
    in_process = decode_columns(jobs, workers=1)
    in_workers = decode_columns(jobs, workers=2)
    for a, b, w in zip(in_process, in_workers, want):
        assert a.shape == w.shape and np.array_equal(a, w) and np.array_equal(b, w)


def test_bad_streams_name_the_column():
    cols = _columns(0, 4000, [16, 16])
    streams = [encode_column(c, 16) for c in cols]
    with pytest.raises(ValueError, match="column 1"):
        decode_columns([([streams[0], streams[1][:-3]], 4000, [16, 16])], workers=1)
    with pytest.raises(ValueError, match="add up to"):
        split_streams(b"".join(streams), [len(streams[0]), len(streams[1]) + 4])


def test_adaptive_coder_round_trip_with_and_without_contexts():
    rng = np.random.default_rng(7)
    n = 70000  # several chunks
    ctx = rng.integers(0, 5, n)
    sym = np.minimum(rng.geometric(0.3, n) - 1 + ctx, 19)
    zeros = np.zeros(n, dtype=np.int64)
    enc = new_encoder()
    adaptive_code(enc, sym, ctx, 5, 20)
    adaptive_code(enc, sym, zeros, 1, 20)
    dec = new_decoder(encoder_bytes(enc))
    assert np.array_equal(adaptive_code(dec, None, ctx, 5, 20), sym)
    out = np.zeros(n, dtype=np.uint8)
    adaptive_code(dec, None, zeros, 1, 20, out=out)
    assert np.array_equal(out, sym)


def test_single_stream_columns_round_trip():
    cols = np.stack(_columns(3, 5000, [16, 300]), 1)
    data = encode_single_stream(cols, [16, 300])
    out = decode_single_stream(data, 5000, [16, 300])
    assert out.dtype == np.uint16 and np.array_equal(out, cols)
    with pytest.raises(ValueError, match="cannot decode"):
        decode_single_stream(data[:-2], 5000, [16, 300])
