"""Which training run a folder of checkpoints belongs to (standard library only).

A run folder's ``checkpoints/`` carries a ``RUN_FINGERPRINT`` stamp: a hash of everything the
run depends on: method, params (the variant resolved), settings (iterations, seed, backend,
device, checkpoint interval), the scene (the pipeline's manifest, or the CLI's path, protocol
and input hashes), the state it starts from, the prefixes it saves, and the source of the
training code itself. Resuming is only allowed into a folder whose stamp matches. The pipeline
drops checkpoints that do not match (Snakemake reruns a job because its inputs changed); the
command line refuses and says how to start fresh, since the folder is the user's.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Iterable, Mapping

STAMP = "RUN_FINGERPRINT"
# the settings of a run that enter its fingerprint, as the pipeline passes them
SETTINGS_KEYS = ("iterations", "backend", "device", "checkpoint_every", "seed")


class CheckpointMismatchError(ValueError):
    """A run folder holds checkpoints of a different run."""


@functools.lru_cache(maxsize=1)
def trainer_version() -> str:
    """A hash of the training code's source (the trainer package and the methods' strategies):
    a checkpoint written by other code is not resumed."""
    pkg = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted([*(pkg / "train").glob("*.py"), *(pkg / "methods").glob("*.py")]):
        h.update(f"{f.parent.name}/{f.name}".encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def checkpoint_fingerprint(method: str, params: Mapping[str, Any], settings: Any = None, scene: Any = None,
                           init: Any = None, prefixes: Iterable[int] = ()) -> str:
    """A stable hash of everything a training run depends on (see the module docstring)."""
    parts = [method, params, settings, scene, init, list(prefixes), trainer_version()]
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _has_checkpoints(ckpt: Path) -> bool:
    return ckpt.is_dir() and any(ckpt.glob("ckpt_*"))


def _stamp(ckpt: Path) -> str | None:
    stamp = ckpt / STAMP
    return stamp.read_text().strip() if stamp.is_file() else None


def guard_checkpoints(run_dir: str | Path, fingerprint: str) -> bool:
    """Keep ``run_dir/checkpoints`` only when it belongs to the same run (same fingerprint).

    Snakemake removes a job's declared outputs before rerunning it, but the checkpoints are
    deliberately not outputs (so a killed job resumes). When the job reruns because its inputs
    or params changed, resuming would continue a different run: drop the checkpoints then.
    Returns True when checkpoints were kept for resuming."""
    ckpt = Path(run_dir) / "checkpoints"
    keep = ckpt.is_dir() and _stamp(ckpt) == fingerprint
    if ckpt.exists() and not keep:
        shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True, exist_ok=True)
    (ckpt / STAMP).write_text(fingerprint + "\n")
    return keep and _has_checkpoints(ckpt)


def claim_checkpoints(run_dir: str | Path, fingerprint: str, *, restart: bool = False) -> bool:
    """The command line's guard: resume only checkpoints of the same run; a folder holding
    checkpoints of another run (or unstamped ones) is an error unless ``restart`` (which
    deletes them). Returns True when checkpoints are kept for resuming."""
    ckpt = Path(run_dir) / "checkpoints"
    if _has_checkpoints(ckpt) and _stamp(ckpt) != fingerprint:
        if not restart:
            raise CheckpointMismatchError(
                f"'{ckpt}' holds checkpoints of a different run (method, variant/params, iterations, scene, seed, "
                f"backend/device or training code differ); pass --restart to delete them and start fresh, "
                f"or choose another output folder")
        shutil.rmtree(ckpt)
    elif restart and ckpt.exists():
        shutil.rmtree(ckpt)
    return guard_checkpoints(run_dir, fingerprint)


FINGERPRINT_FILE = STAMP

__all__ = ["FINGERPRINT_FILE", "STAMP", "CheckpointMismatchError", "checkpoint_fingerprint", "claim_checkpoints",
           "guard_checkpoints", "trainer_version"]
