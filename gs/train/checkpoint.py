"""Which checkpoints a run may resume from: a fingerprint of everything the run depends on,
stamped into its checkpoint folder, so a rerun with other inputs starts fresh instead of
continuing a different run. The pipeline's train rule and the command line use the same one."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

FINGERPRINT_FILE = "RUN_FINGERPRINT"


def checkpoint_fingerprint(*parts: Any) -> str:
    """A stable 16-hex-digit hash of ``parts`` (method, params, settings, scene manifest, ...):
    JSON with sorted keys, so dict order does not matter; values JSON cannot hold count by
    their ``str``."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def guard_checkpoints(run_dir: str | Path, fingerprint: str) -> bool:
    """Keep ``run_dir/checkpoints`` only when it belongs to the same run (same fingerprint).

    Snakemake removes a job's declared outputs before rerunning it, but the checkpoints are
    deliberately not outputs (so a killed job resumes). When the job reruns because its inputs
    or params changed, resuming would continue a different run: drop the checkpoints then.
    Returns True when checkpoints were kept for resuming."""
    ckpt = Path(run_dir) / "checkpoints"
    stamp = ckpt / FINGERPRINT_FILE
    keep = ckpt.is_dir() and stamp.is_file() and stamp.read_text().strip() == fingerprint
    if ckpt.exists() and not keep:
        shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint + "\n")
    return keep and any(ckpt.glob("ckpt_*"))


__all__ = ["FINGERPRINT_FILE", "checkpoint_fingerprint", "guard_checkpoints"]
