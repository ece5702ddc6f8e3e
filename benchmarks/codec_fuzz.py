"""Benchmark: fuzz the HGSC and NSVQ-GS decoders with mutated bitstreams.

    PYTHONPATH=. python benchmarks/codec_fuzz.py --cases 10000

Every case is a valid bitstream of a small model, mutated one way: raw byte flips, cuts and
appends (the container checksums catch them), or structured mutations written back with valid
checksums and stream id (array bytes, lengths, dtypes, missing arrays, meta values and keys),
which reach the decoders' own checks. Cases alternate between the two decoders. A case passes
when decoding returns a model or raises :class:`gs.codecs.base.BitstreamError`; against the
decoders count: another exception, a hang (no answer within ``--timeout`` s), a huge
allocation (MemoryError under an address-space limit ``--memory-gb`` above the worker's
start) and a dead worker. The decodes run in one worker process (restarted after a hang or a
death), one decode thread and process each. Writes its counts to
benchmarks/results/codec_fuzz.json; the test suite runs a few hundred cases
(tests/test_codec_fuzz.py).
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # this checkout's gs
OUTCOMES = ("decoded", "bitstream_error", "other_error", "hang", "memory", "worker_died")
FAILURES = ("other_error", "hang", "memory", "worker_died")
CODECS = ("hgsc", "nsvqgs")
RAW = ("flip_bytes", "truncate", "append", "drop_file")
STRUCTURED = ("array_bytes", "array_length", "array_dtype", "array_drop", "meta_value", "meta_drop")


def _model(n: int, degree: int, seed: int):
    import torch

    from gs.model import GaussianModel

    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    return GaussianModel(dict(
        means=torch.rand(n, 3, generator=g), scales=torch.randn(n, 3, generator=g) - 3,
        quats=torch.randn(n, 4, generator=g), opacities=torch.randn(n, generator=g),
        sh0=torch.randn(n, 1, 3, generator=g), shN=torch.randn(n, k - 1, 3, generator=g) * 0.1), degree)


def base_bitstreams(root: Path) -> dict[str, Path]:
    """One small valid bitstream per decoder."""
    from gs.codecs.base import CodecContext
    from gs.methods.hgsc import HGSCCodec
    from gs.methods.nsvqgs import NSVQCodec

    out = {"hgsc": root / "hgsc", "nsvqgs": root / "nsvqgs"}
    HGSCCodec(prune_percent=0, block_size=64, lod_block_size=32).encode(_model(400, 1, 0), out["hgsc"], CodecContext())
    NSVQCodec(k_scale=8, k_rotation=8, k_dc=8, k_sh=8).encode(_model(300, 1, 1), out["nsvqgs"], CodecContext())
    return out


def _random_value(rng: np.random.Generator) -> Any:
    return [0, -1, 1, 2 ** 31, -(2 ** 40), 10 ** 18, 3.5, float("nan"), float("inf"), 1e300, "x", "", None, True,
            [], {}, [1, 2], "octree", "draco", 15, 21, 64][rng.integers(21)]


def _mutate_meta(meta: dict, rng: np.random.Generator, drop: bool) -> None:
    """Set (or delete) one key of ``meta``, possibly inside a nested dict."""
    d = meta
    while True:
        nested = [k for k, v in d.items() if isinstance(v, dict) and v]
        if not nested or rng.random() < 0.5:
            break
        d = d[nested[rng.integers(len(nested))]]
    if not d:
        return
    key = list(d)[rng.integers(len(d))]
    if drop:
        del d[key]
    else:
        d[key] = _random_value(rng)


def _mutate_array(value: np.ndarray | bytes, kind: str, rng: np.random.Generator) -> np.ndarray | bytes:
    raw = value if isinstance(value, bytes) else value.tobytes()
    if kind == "array_bytes" and raw:
        b = bytearray(raw)
        for pos in rng.integers(0, len(b), rng.integers(1, 9)):
            b[pos] = int(rng.integers(256))
        raw = bytes(b)
    elif kind == "array_length":
        raw = raw[:rng.integers(len(raw) + 1)] if rng.random() < 0.7 else raw + rng.bytes(int(rng.integers(1, 64)))
    if isinstance(value, bytes):
        return raw
    if kind == "array_dtype":
        return value.astype([np.float64, np.int8, np.uint16, np.int64, np.float16][rng.integers(5)])
    item = value.dtype.itemsize
    return np.frombuffer(raw[:len(raw) // item * item], dtype=value.dtype).copy()


def mutate(src: Path, dst: Path, rng: np.random.Generator) -> str:
    """Copy the bitstream ``src`` to ``dst`` with one mutation; returns its kind."""
    from gs.codecs.container import read_container, write_container_set

    shutil.copytree(src, dst)
    files = sorted(dst.iterdir())
    kind = (RAW + STRUCTURED)[rng.integers(len(RAW) + len(STRUCTURED))]
    target = files[rng.integers(len(files))]
    data = target.read_bytes()
    if kind == "flip_bytes":
        b = bytearray(data)
        for pos in rng.integers(0, len(b), rng.integers(1, 9)):
            b[pos] ^= int(rng.integers(1, 256))
        target.write_bytes(bytes(b))
    elif kind == "truncate":
        target.write_bytes(data[:rng.integers(len(data))])
    elif kind == "append":
        target.write_bytes(data + rng.bytes(int(rng.integers(1, 256))))
    elif kind == "drop_file":
        target.unlink()
    else:
        contents = {p: read_container(p) for p in files}
        arrays, meta = contents[target]
        if kind.startswith("meta"):
            _mutate_meta(meta, rng, drop=kind == "meta_drop")
        elif arrays:
            name = list(arrays)[rng.integers(len(arrays))]
            if kind == "array_drop":
                del arrays[name]
            else:
                arrays[name] = _mutate_array(arrays[name], kind, rng)
        write_container_set(contents)
    return kind


def worker_main() -> None:
    """Decode the bitstreams named on stdin (``codec<TAB>folder``), one outcome line each."""
    import resource

    import torch

    from gs.codecs.base import BitstreamError
    from gs.methods.hgsc import HGSCCodec
    from gs.methods.nsvqgs import NSVQCodec

    torch.set_num_threads(1)
    codecs = {"hgsc": HGSCCodec, "nsvqgs": NSVQCodec}
    with tempfile.TemporaryDirectory() as tmp:  # warm up: every import and first-call cost
        for codec, path in base_bitstreams(Path(tmp)).items():
            codecs[codec]().decode(path)
    limit_gb = float(os.environ.get("CODEC_FUZZ_MEMORY_GB", "2"))
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + int(limit_gb * 2 ** 30), resource.RLIM_INFINITY))
    print("ready", flush=True)
    for line in sys.stdin:
        codec, path = line.rstrip("\n").split("\t")
        try:
            codecs[codec]().decode(path)
            out = "decoded"
        except BitstreamError:
            out = "bitstream_error"
        except MemoryError:
            out = "memory"
        except Exception as exc:  # noqa: BLE001 - what the fuzzer looks for
            out = f"other_error\t{type(exc).__name__}: {str(exc)[:300]}".replace("\n", " ")
        print(out, flush=True)


class _Worker:
    """The decoding process, restarted after a hang or a death."""

    def __init__(self, memory_gb: float) -> None:
        self.env = {**os.environ, "GS_DECODE_WORKERS": "1", "OMP_NUM_THREADS": "1",
                    "CODEC_FUZZ_MEMORY_GB": str(memory_gb),
                    "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker"], cwd=REPO,
                                     env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the fuzz worker did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def decode(self, codec: str, path: Path, timeout: float) -> tuple[str, str]:
        if self.proc is None:
            self._start()
        try:
            self.proc.stdin.write(f"{codec}\t{path}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.stop()
            return "worker_died", ""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            ready = sel.select(timeout)
        if not ready:
            self.stop()
            return "hang", f"no answer within {timeout} s"
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.poll()
            self.stop()
            return "worker_died", f"exit code {code}"
        outcome, _, detail = line.rstrip("\n").partition("\t")
        return outcome, detail


def run_fuzz(cases: int, seed: int = 0, timeout: float = 30.0, memory_gb: float = 2.0,
             progress: bool = False) -> dict[str, Any]:
    """Decode ``cases`` mutated bitstreams (alternating decoders); returns the counts per
    decoder and outcome, per mutation kind, and the first failures."""
    rng = np.random.default_rng(seed)
    counts = {c: dict.fromkeys(OUTCOMES, 0) for c in CODECS}
    kinds: dict[str, dict[str, int]] = {}
    failures: list[dict[str, Any]] = []
    worker = _Worker(memory_gb)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        bases = base_bitstreams(Path(tmp) / "base")
        try:
            for i in range(cases):
                codec = CODECS[i % len(CODECS)]
                case = Path(tmp) / "case"
                shutil.rmtree(case, ignore_errors=True)
                kind = mutate(bases[codec], case, rng)
                outcome, detail = worker.decode(codec, case, timeout)
                counts[codec][outcome] += 1
                kinds.setdefault(kind, dict.fromkeys(OUTCOMES, 0))[outcome] += 1
                if outcome in FAILURES and len(failures) < 20:
                    failures.append({"case": i, "codec": codec, "mutation": kind, "outcome": outcome,
                                     "detail": detail})
                if progress and (i + 1) % 500 == 0:
                    print(f"{i + 1}/{cases} cases, {time.perf_counter() - t0:.0f} s", flush=True)
        finally:
            worker.stop()
    return {"cases": cases, "seed": seed, "timeout_s": timeout, "memory_limit_gb": memory_gb,
            "seconds": round(time.perf_counter() - t0, 1), "counts": counts, "by_mutation": kinds,
            "failures": sum(counts[c][o] for c in CODECS for o in FAILURES), "first_failures": failures}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds before a decode counts as a hang")
    ap.add_argument("--memory-gb", type=float, default=2.0, help="allocation limit above the worker's start")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "codec_fuzz.json")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_main()
        return
    result = run_fuzz(args.cases, args.seed, args.timeout, args.memory_gb, progress=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("cases", "seconds", "counts", "failures")}, indent=1))


if __name__ == "__main__":
    main()
