"""Adaptive range coding of independent symbol columns, decodable in worker processes.

HGSC's LoD residuals are tens of millions of symbols (about 50M for 1M Gaussians). Range
decoding in constriction costs ~30 ns a symbol and holds the GIL (two decodes in two threads
take twice as long as one), so one stream is decoded on one core whatever the machine has.
Here every column is its own stream with its own adaptive statistics, and
:func:`decode_columns` hands the columns to a pool of worker processes when there are enough
symbols to pay for it.

The adaptive coder (:func:`adaptive_code`, HGSC's, with per-context counts): growing chunks
(256 symbols, doubling, at most 65536), each coded with the counts of everything before it
plus a prior of 0.25 per symbol; a column stream is its single-context case. This module
imports only numpy and constriction (not torch), so the workers, forked from a ``forkserver``
that preloads those, start in milliseconds and never touch the parent's CUDA context or threads.
They never run the parent's ``__main__`` either (:func:`_without_main`), so decoding works
from any script, a Snakemake ``script:`` job included.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import types
from typing import Any, Iterator, Sequence

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


class Plan:
    """How :func:`adaptive_code` walks a block with given contexts: per chunk the stable order
    by context and the runs of equal context. Reusable for every column that shares them."""

    def __init__(self, contexts: np.ndarray) -> None:
        self.n = len(contexts)
        self.contexts = contexts
        self.single = self.n == 0 or not contexts.any()
        # a stable argsort of 8-bit keys is a radix sort: several times faster, same order
        small = not self.single and contexts.min() >= 0 and contexts.max() < 256
        keys = contexts.astype(np.uint8) if small else contexts
        self.chunks = []
        for s, e in chunk_bounds(self.n):
            if self.single:
                self.chunks.append((s, e, None))
                continue
            ctx = keys[s:e]
            order = np.argsort(ctx, kind="stable")
            sc = ctx[order]
            cuts = np.flatnonzero(np.diff(sc)) + 1
            starts = np.concatenate([[0], cuts])
            stops = np.concatenate([cuts, [len(sc)]])
            runs = [(int(sc[a]), s + order[a:b]) for a, b in zip(starts, stops)]
            self.chunks.append((s, e, runs))


def adaptive_code(coder: Any, symbols: np.ndarray | None, contexts: np.ndarray, n_ctx: int, alphabet: int,
                  prior: float = PRIOR, plan: Plan | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Code one block of symbols with per-context adaptive frequency counts (fresh counts per
    block). Within a chunk the counts are frozen and the symbols are coded grouped by context,
    so encoder and decoder need only the contexts (known to both) and a handful of model
    builds per chunk - vectorised, no per-symbol Python loop. ``symbols`` None = decode (into
    ``out`` when given); ``plan`` = a precomputed :class:`Plan` of ``contexts``."""
    import constriction

    Categorical = constriction.stream.model.Categorical
    plan = plan if plan is not None else Plan(np.asarray(contexts))
    n = plan.n
    counts = np.full((n_ctx, alphabet), prior, dtype=np.float64)
    if symbols is None:
        out = np.empty(n, dtype=np.int64) if out is None else out
    else:
        out = np.asarray(symbols, dtype=np.int64)
    for s, e, runs in plan.chunks:
        if runs is None:  # one context: the chunk in order, one model
            model = Categorical(counts[0] / counts[0].sum(), perfect=False)
            if symbols is None:
                out[s:e] = coder.decode(model, e - s)
            else:
                coder.encode(out[s:e].astype(np.int32), model)
            counts[0] += np.bincount(out[s:e], minlength=alphabet)
            continue
        for c, idx in runs:
            model = Categorical(counts[c] / counts[c].sum(), perfect=False)
            if symbols is None:
                out[idx] = coder.decode(model, len(idx))
            else:
                coder.encode(out[idx].astype(np.int32), model)
        ctx = plan.contexts[s:e]
        counts += np.bincount(ctx * alphabet + out[s:e], minlength=n_ctx * alphabet).reshape(n_ctx, alphabet)
    return out


def new_encoder() -> Any:
    """An empty range encoder (constriction's queue coder)."""
    import constriction

    return constriction.stream.queue.RangeEncoder()


def encoder_bytes(enc: Any) -> bytes:
    """The encoder's stream as little-endian 32-bit words."""
    return np.asarray(enc.get_compressed(), dtype="<u4").tobytes()


def new_decoder(data: bytes) -> Any:
    """A range decoder over a stream of :func:`encoder_bytes`; ValueError if it cannot be one."""
    import constriction

    if len(data) % 4:
        raise ValueError("range-coded stream is not a whole number of 32-bit words")
    return constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))


def encode_column(symbols: np.ndarray, alphabet: int) -> bytes:
    """One column of symbols in [0, alphabet) -> its own range-coded stream (32-bit words)."""
    enc = new_encoder()
    sym = np.asarray(symbols, dtype=np.int64)
    adaptive_code(enc, sym, np.zeros(len(sym), dtype=np.int64), 1, alphabet)
    return encoder_bytes(enc)


def decode_column(data: bytes, n: int, alphabet: int) -> np.ndarray:
    """Inverse of :func:`encode_column`: (n,) symbols, uint8 or uint16 by the alphabet.
    Raises ValueError on a stream that cannot be this column."""
    return _decode_group([data], 0, n, [alphabet], None, 1)[0]


def encode_single_stream(symbols: np.ndarray, alphabets: Sequence[int]) -> bytes:
    """Every column of ``symbols`` (n, d) in turn in ONE stream, fresh statistics per column
    (HGSC format 1's LoD residuals; decodable on one core only)."""
    enc = new_encoder()
    if symbols.size:
        plan = Plan(np.zeros(symbols.shape[0], dtype=np.int64))
        for c in range(symbols.shape[1]):
            adaptive_code(enc, symbols[:, c], plan.contexts, 1, int(alphabets[c]), plan=plan)
    return encoder_bytes(enc)


def decode_single_stream(data: bytes, n: int, alphabets: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`encode_single_stream`: (n, d) symbols (a transposed view of (d, n)
    storage). Raises ValueError on a stream that cannot be these columns."""
    out = np.zeros((len(alphabets), n), dtype=np.uint8 if max(alphabets, default=1) <= 256 else np.uint16)
    if n:
        plan = Plan(np.zeros(n, dtype=np.int64))
        try:
            dec = new_decoder(data)
            for c, alphabet in enumerate(alphabets):
                adaptive_code(dec, None, plan.contexts, 1, int(alphabet), PRIOR, plan, out[c])
        except Exception as exc:  # noqa: BLE001 - constriction raises several kinds
            raise ValueError(f"cannot decode ({type(exc).__name__}: {exc})") from None
    return out.T


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
    """A process pool (forkserver with numpy and constriction preloaded), kept for the next
    decode. The forkserver does not preload this module: it starts without the parent's
    ``sys.path`` (Python 3.11 ignores it), so it could import another copy of ``gs`` (an
    installed one instead of the checkout the parent runs) and every worker would inherit it;
    the workers import this module themselves, after taking the parent's ``sys.path``."""
    global _POOL, _POOL_WORKERS
    if _POOL is None or _POOL_WORKERS != workers:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if _POOL is not None:
            _POOL.shutdown()
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["numpy", "constriction"])
        _POOL, _POOL_WORKERS = ProcessPoolExecutor(max_workers=workers, mp_context=ctx), workers
        atexit.register(_POOL.shutdown)
    return _POOL


@contextlib.contextmanager
def _without_main() -> Iterator[None]:
    """A blank ``__main__`` while worker processes start. A spawn or forkserver child re-runs
    the parent's main script (as ``__mp_main__``) before it runs a task; the workers need
    nothing from it (their functions live in this module), and a script that cannot run twice
    breaks the pool: a Snakemake ``script:`` job needs the ``snakemake`` object that only the
    job has, a script without a main guard would run its work again. The pool starts its
    processes in ``submit`` (for these start methods), so the submits run inside this block."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def usable_cores(limit: int = MAX_WORKERS) -> int:
    """The cores this process may run on (its CPU affinity), at most ``limit``, at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(limit, cores))


def decode_workers(total_symbols: int) -> int:
    """How many processes decode ``total_symbols``: ``GS_DECODE_WORKERS`` if set (0 or 1 =
    in this process), else every core up to MAX_WORKERS once there are PARALLEL_MIN_SYMBOLS."""
    env = os.environ.get("GS_DECODE_WORKERS")
    if env is not None:
        return max(1, int(env))
    if total_symbols < PARALLEL_MIN_SYMBOLS:
        return 1
    return usable_cores()


class ColumnDecodeError(ValueError):
    """A column stream that cannot be decoded; ``job`` is its index in the jobs given."""

    def __init__(self, job: int, message: str) -> None:
        super().__init__(message)
        self.job = job


def _decode_group(datas: Sequence[bytes], first: int, n: int, alphabets: Sequence[int],
                  contexts: np.ndarray | None, n_ctx: int) -> list[np.ndarray]:
    """Decode several columns that share their row contexts (one plan for all of them)."""
    plan = Plan(np.zeros(n, dtype=np.int64) if contexts is None else np.asarray(contexts, dtype=np.int64))
    outs = []
    for i, (data, alphabet) in enumerate(zip(datas, alphabets)):
        try:
            dec = new_decoder(data)
            out = np.empty(n, dtype=np.uint8 if alphabet <= 256 else np.uint16)
            adaptive_code(dec, None, plan.contexts, n_ctx, int(alphabet), plan=plan, out=out)
        except Exception as exc:  # noqa: BLE001 - constriction raises several kinds
            raise ValueError(f"column {first + i}: cannot decode ({type(exc).__name__}: {exc})") from None
        outs.append(out)
    return outs


def submit_columns(jobs: Sequence[tuple], workers: int | None = None) -> list:
    """Start decoding blocks of column streams (the jobs of :func:`decode_columns`) and return
    at once: one callable per job that waits for that job and returns its (n, d) array, so
    the caller can use the first jobs while the workers still decode the others (with one
    worker, a job is decoded here when its callable is called). The callables raise
    :class:`ColumnDecodeError`."""
    jobs = [tuple(j) + (None, 1)[len(j) - 3:] for j in jobs]
    if workers is None:
        workers = decode_workers(sum(n * len(streams) for streams, n, *_ in jobs))
    tasks = [[] for _ in jobs]  # per job: (first column, args)
    for j, (streams, n, alphabets, contexts, n_ctx) in enumerate(jobs):
        # one task per column when there is no context table to send, else a few per worker
        groups = len(streams) if contexts is None else min(len(streams), 2 * max(1, workers))
        for cols in np.array_split(np.arange(len(streams)), groups) if len(streams) else []:
            c0, c1 = int(cols[0]), int(cols[-1]) + 1
            tasks[j].append((c0, (list(streams[c0:c1]), c0, n, [int(a) for a in alphabets[c0:c1]], contexts, n_ctx)))
    parallel = workers > 1 and sum(map(len, tasks)) > 1
    if parallel:
        with _without_main():
            pool = _pool(workers)
            futures = [[pool.submit(_decode_group, *args) for _, args in job_tasks] for job_tasks in tasks]

    def result(j: int) -> np.ndarray:
        streams, n, alphabets, _, _ = jobs[j]
        out = np.zeros((len(streams), n), dtype=np.uint8 if max(alphabets, default=1) <= 256 else np.uint16)
        for t, (c0, args) in enumerate(tasks[j]):
            try:
                cols = futures[j][t].result() if parallel else _decode_group(*args)
            except Exception as exc:  # noqa: BLE001 - a decode error, a worker's error, a broken pool
                raise ColumnDecodeError(j, str(exc)) from exc
            for i, col in enumerate(cols):
                out[c0 + i] = col
        return out.T

    return [lambda j=j: result(j) for j in range(len(jobs))]


def decode_columns(jobs: Sequence[tuple], workers: int | None = None) -> list[np.ndarray]:
    """Decode blocks of column streams: each job is ``(streams, n, alphabets)`` or
    ``(streams, n, alphabets, contexts, n_ctx)`` (per-row contexts shared by its columns) ->
    one (n, d) array per job (a transposed view of (d, n) storage). The columns go to worker
    processes in groups (one context table sent per group). Raises :class:`ColumnDecodeError`
    naming the job and the column that fails."""
    return [result() for result in submit_columns(jobs, workers)]


__all__ = ["ColumnDecodeError", "Plan", "adaptive_code", "chunk_bounds", "encode_column", "decode_column",
           "decode_columns", "decode_workers", "submit_columns", "split_streams", "usable_cores", "new_encoder",
           "new_decoder", "encoder_bytes", "encode_single_stream", "decode_single_stream"]
