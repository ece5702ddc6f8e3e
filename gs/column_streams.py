"""Adaptive range coding of independent symbol columns, decodable in worker processes.

HGSC's LoD residuals are tens of millions of symbols (about 50M for 1M Gaussians). Range
decoding in constriction costs ~30 ns a symbol and holds the GIL (two decodes in two threads
take twice as long as one), so one stream is decoded on one core whatever the machine has.
Here every column is its own stream with its own adaptive statistics, and
:func:`decode_columns` hands the columns to a pool of worker processes when there are enough
symbols to pay for it.

The adaptive model is the single-context case of HGSC's coder: growing chunks (256 symbols,
doubling, at most 65536), each coded with the counts of everything before it plus a prior of
0.25 per symbol. This module imports only numpy and constriction (not torch), so the workers,
forked from a ``forkserver`` that preloads it, start in milliseconds and never touch the
parent's CUDA context or threads.
"""

from __future__ import annotations

import atexit
import os
from typing import Sequence

import numpy as np

PRIOR = 0.25
PARALLEL_MIN_SYMBOLS = 2_000_000  # below this the pool costs more than it saves
MAX_WORKERS = 16


def chunk_bounds(n: int, first: int = 256, cap: int = 65536) -> list[tuple[int, int]]:
    """Growing chunks: the model adapts after each chunk (quickly at the start of a block)."""
    out, s = [], 0
    while s < n:
        e = min(n, s + min(cap, max(first, s)))
        out.append((s, e))
        s = e
    return out


def encode_column(symbols: np.ndarray, alphabet: int) -> bytes:
    """One column of symbols in [0, alphabet) -> its own range-coded stream (32-bit words)."""
    import constriction

    Categorical = constriction.stream.model.Categorical
    enc = constriction.stream.queue.RangeEncoder()
    sym = np.asarray(symbols, dtype=np.int64)
    counts = np.full(alphabet, PRIOR, dtype=np.float64)
    for s, e in chunk_bounds(len(sym)):
        enc.encode(sym[s:e].astype(np.int32), Categorical(counts / counts.sum(), perfect=False))
        counts += np.bincount(sym[s:e], minlength=alphabet)
    return np.asarray(enc.get_compressed(), dtype="<u4").tobytes()


def decode_column(data: bytes, n: int, alphabet: int) -> np.ndarray:
    """Inverse of :func:`encode_column`: (n,) symbols, uint8 or uint16 by the alphabet.
    Raises ValueError on a stream that cannot be this column."""
    import constriction

    if len(data) % 4:
        raise ValueError("range-coded stream is not a whole number of 32-bit words")
    Categorical = constriction.stream.model.Categorical
    dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
    out = np.empty(n, dtype=np.uint8 if alphabet <= 256 else np.uint16)
    counts = np.full(alphabet, PRIOR, dtype=np.float64)
    for s, e in chunk_bounds(n):
        block = dec.decode(Categorical(counts / counts.sum(), perfect=False), e - s)
        if block.size and (block.min() < 0 or block.max() >= alphabet):
            raise ValueError("decoded symbols outside the alphabet")
        out[s:e] = block
        counts += np.bincount(block, minlength=alphabet)
    return out


def split_streams(blob: bytes, sizes: Sequence[int]) -> list[bytes]:
    """The column streams of ``blob`` (their concatenation) given their byte sizes."""
    sizes = [int(x) for x in sizes]
    if sum(sizes) != len(blob) or min(sizes, default=0) < 0:
        raise ValueError(f"stream sizes add up to {sum(sizes)} bytes, the data holds {len(blob)}")
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return [blob[offsets[i]:offsets[i + 1]] for i in range(len(sizes))]


_POOL = None
_POOL_WORKERS = 0


def _pool(workers: int):
    """A process pool (forkserver, this module preloaded), kept for the next decode."""
    global _POOL, _POOL_WORKERS
    if _POOL is None or _POOL_WORKERS != workers:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if _POOL is not None:
            _POOL.shutdown()
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["numpy", "constriction", __name__])
        _POOL, _POOL_WORKERS = ProcessPoolExecutor(max_workers=workers, mp_context=ctx), workers
        atexit.register(_POOL.shutdown)
    return _POOL


def decode_workers(total_symbols: int) -> int:
    """How many processes decode ``total_symbols``: ``GS_DECODE_WORKERS`` if set (0 or 1 =
    in this process), else every core up to MAX_WORKERS once there are PARALLEL_MIN_SYMBOLS."""
    env = os.environ.get("GS_DECODE_WORKERS")
    if env is not None:
        return max(1, int(env))
    if total_symbols < PARALLEL_MIN_SYMBOLS:
        return 1
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def decode_columns(jobs: Sequence[tuple[Sequence[bytes], int, Sequence[int]]],
                   workers: int | None = None) -> list[np.ndarray]:
    """Decode several blocks of columns: ``jobs`` = [(streams, n, alphabets)] -> one (n, d)
    array per job (a transposed view of (d, n) storage). Raises ValueError naming the job and
    column that fails."""
    tasks = [(j, c, data, n, int(alpha)) for j, (streams, n, alphabets) in enumerate(jobs)
             for c, (data, alpha) in enumerate(zip(streams, alphabets))]
    if workers is None:
        workers = decode_workers(sum(n * len(streams) for streams, n, _ in jobs))
    workers = min(workers, max(1, len(tasks)))
    outs = [np.zeros((len(streams), n), dtype=np.uint8 if max(alphabets, default=1) <= 256 else np.uint16)
            for streams, n, alphabets in jobs]

    def fail(j: int, c: int, exc: Exception) -> ValueError:
        return ValueError(f"block {j}, column {c}: cannot decode ({type(exc).__name__}: {exc})")

    if workers <= 1:
        for j, c, data, n, alpha in tasks:
            try:
                outs[j][c] = decode_column(data, n, alpha)
            except Exception as exc:  # noqa: BLE001 - constriction raises several kinds
                raise fail(j, c, exc) from exc
    else:
        pool = _pool(workers)
        futures = [(j, c, pool.submit(decode_column, data, n, alpha)) for j, c, data, n, alpha in tasks]
        for j, c, fut in futures:
            try:
                outs[j][c] = fut.result()
            except Exception as exc:  # noqa: BLE001
                raise fail(j, c, exc) from exc
    return [o.T for o in outs]


__all__ = ["chunk_bounds", "encode_column", "decode_column", "decode_columns", "decode_workers", "split_streams"]
