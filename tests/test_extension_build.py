"""The CUDA extension is built once when several jobs start together (gs.render.extension_build).

A stand-in loader behaves like gsplat's JIT loader: it deletes the build lock, compiles into a
shared folder by writing the library in pieces, and loads whatever library it finds. Started in
several processes at once without the lock, they overwrite each other's build; through
:func:`load_once` one compiles and the others load its finished library."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

from gs.render.extension_build import load_once

LIBRARY = b"compiled library: complete\n"


def _standin_jit_load(build: Path) -> str:
    """Load build/lib.so, compiling it first when absent; a partial library is an error."""
    lib = build / "lib.so"
    (build / "lock").unlink(missing_ok=True)  # what gsplat's loader does before building
    if not lib.exists():
        with open(build / "compiles.log", "a") as log:
            log.write("compile\n")
        with open(lib, "wb") as f:  # written in pieces, as a compiler and linker would
            for i in range(0, len(LIBRARY), 4):
                f.write(LIBRARY[i:i + 4])
                f.flush()
                time.sleep(0.05)
    data = lib.read_bytes()
    if data != LIBRARY:
        raise OSError(f"cannot open shared object file: {lib} is incomplete ({len(data)} bytes)")
    return "loaded"


def _job(build: str, use_lock: bool, barrier, results) -> None:
    barrier.wait(timeout=300)  # start together, however long each process took to spawn
    try:
        if use_lock:
            out = load_once(lambda: _standin_jit_load(Path(build)), Path(build).parent / "ext.lock",
                            log=lambda msg: None)
        else:
            out = _standin_jit_load(Path(build))
    except OSError as exc:
        out = f"failed: {exc}"
    results.put(out)


def _run_jobs(tmp_path: Path, use_lock: bool, n: int = 4) -> tuple[list[str], int]:
    build = tmp_path / ("locked" if use_lock else "unlocked") / "gsplat_cuda"
    build.mkdir(parents=True)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    barrier = ctx.Barrier(n)
    procs = [ctx.Process(target=_job, args=(str(build), use_lock, barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    outs = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    compiles = (build / "compiles.log").read_text().count("compile")
    return outs, compiles


def test_concurrent_first_loads_compile_once(tmp_path):
    outs, compiles = _run_jobs(tmp_path, use_lock=True)
    assert outs == ["loaded"] * 4
    assert compiles == 1


def test_standin_breaks_without_the_lock(tmp_path):
    """The stand-in reproduces the race the lock prevents (so the test above can fail)."""
    outs, compiles = _run_jobs(tmp_path, use_lock=False)
    assert compiles > 1 or any(o.startswith("failed") for o in outs)


def test_load_once_releases_the_lock_when_the_loader_raises(tmp_path):
    lock = tmp_path / "ext.lock"

    def broken():
        raise RuntimeError("nvcc fatal")

    try:
        load_once(broken, lock, log=lambda msg: None)
    except RuntimeError:
        pass
    assert load_once(lambda: 7, lock, log=lambda msg: None) == 7
