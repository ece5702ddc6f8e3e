"""Build a JIT-compiled CUDA extension once per machine, however many jobs start at once.

gsplat compiles its CUDA kernels on first use (``torch.utils.cpp_extension``), into one folder
shared by every process of the user. Its loader deletes torch's build lock before it starts,
so N pipeline jobs that start together each compile into the same folder and break each other
(missing object files, a half-written ``.so``). :func:`load_once` serialises that first load
behind an ``flock`` beside the build folder: the first process compiles, the others wait and
then load the finished library. The kernel drops the lock when its holder exits or is killed,
so a crashed build never blocks later jobs.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def torch_extensions_root() -> Path:
    """The folder torch JIT-builds extensions into (``TORCH_EXTENSIONS_DIR`` or torch's
    per-user default), without importing a CUDA extension."""
    from torch.utils.cpp_extension import _get_build_directory

    return Path(_get_build_directory("gs_bench_probe", verbose=False)).parent


def load_once(load: Callable[[], T], lock_path: str | Path, what: str = "extension",
              log: Callable[[str], None] | None = None) -> T:
    """Call ``load()`` while holding an exclusive ``flock`` on ``lock_path``; return its result.

    Another process holding the lock (compiling) makes this one wait; ``log`` hears about the
    wait once (default: stderr)."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            t0 = time.monotonic()
            log(f"{what}: another process is building it; waiting ({lock_path})")
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            log(f"{what}: waited {time.monotonic() - t0:.1f} s")
        try:
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            f.flush()
            return load()
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


__all__ = ["load_once", "torch_extensions_root"]
