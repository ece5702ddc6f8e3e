"""One pipeline run at a time per results folder (standard library only).

Snakemake's own lock covers one working directory; two checkouts (or working directories) that
share a ``results_dir`` would otherwise resume each other's in-flight checkpoints and overwrite
each other's outputs. The run takes an exclusive ``flock`` on ``results_dir/.gsbench.lock``
when it starts and holds it until it ends. The kernel drops the lock when the process exits,
however it exits (kill -9 included), so a crashed run never leaves a stale lock behind; the
file's content (pid, host, working directory, start time) only serves the message.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import IO

LOCK_NAME = ".gsbench.lock"


class ResultsLocked(RuntimeError):
    """Another run holds the results folder."""


_held: dict[str, IO[str]] = {}


def acquire(results_dir: str | Path) -> Path:
    """Take the results folder for this process; raise :class:`ResultsLocked` (naming the
    holder) when another process has it. Taking it twice in one process is a no-op."""
    path = Path(results_dir) / LOCK_NAME
    key = os.path.realpath(path)
    if key in _held:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        text = f.read()
        f.close()
        try:
            who = json.loads(text)
            holder = (f"pid {who['pid']} on {who['host']}, working directory {who['cwd']}, "
                      f"started {who['started']}")
        except (ValueError, KeyError, TypeError):
            holder = "holder unknown"
        raise ResultsLocked(
            f"results folder '{results_dir}' is in use by another pipeline run ({holder}); wait for it "
            f"to finish, or give this run its own results_dir") from None
    f.seek(0)
    f.truncate()
    f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "cwd": os.getcwd(),
                        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
    f.flush()
    _held[key] = f
    return path


def release(results_dir: str | Path) -> None:
    """Give the results folder back (the file stays; only the lock matters)."""
    f = _held.pop(os.path.realpath(Path(results_dir) / LOCK_NAME), None)
    if f is not None:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()
