"""Provenance of a result: package versions, git commit, input hashes, the device."""

from __future__ import annotations

import importlib
import platform
import subprocess
from pathlib import Path
from typing import Iterable

from gs.io import sha256_file
from gs.runtime import gpu_sharing

import torch



def _module_version(name: str) -> str | None:
    try:
        mod = importlib.import_module(name)
    except Exception:  # not installed, or a CUDA extension that fails to load here
        return None
    return str(getattr(mod, "__version__", None) or getattr(mod, "VERSION", None) or "unknown")


def versions() -> dict[str, str | None]:
    """Versions of python, torch (+ CUDA build), gs, numpy and the optional packages that can
    change numbers (gsplat, lpips, torchvision). A package that is not installed maps to None
    with ``<name>_reason``."""
    import numpy

    import gs

    out: dict[str, str | None] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "gs": gs.__version__,
        "numpy": numpy.__version__,
    }
    if out["torch_cuda"] is None:
        out["torch_cuda_reason"] = "CPU-only torch build"
    for name in ("gsplat", "lpips", "torchvision"):
        out[name] = _module_version(name)
        if out[name] is None:
            out[f"{name}_reason"] = "not installed (or fails to import here)"
    return out


def git_commit(path: str | Path | None = None) -> str | None:
    """HEAD commit of the git work tree containing ``path`` (default: this package), with a
    ``-dirty`` suffix when tracked files are modified; None outside a repository or without
    git."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    if where.is_file():
        where = where.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        commit = head.stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=30)
        return commit + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def sha256_files(paths: Iterable[str | Path]) -> dict[str, str | None]:
    """path -> sha256; a directory contributes each file inside it (sorted, recursive); a
    missing path maps to None (the caller records why)."""
    out: dict[str, str | None] = {}
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                out[str(f)] = sha256_file(f)
        elif p.is_file():
            out[str(p)] = sha256_file(p)
        else:
            out[str(p)] = None
    return out


def describe_device(device: str | torch.device | None = None) -> dict[str, str | None]:
    """{"type": "cuda"|"cpu"|..., "name": GPU name or CPU description}; on a GPU also how the job
    held it (``gpu_sharing``: whether its timings are solo figures)."""
    dev = torch.device(device) if device is not None else (
        torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    if dev.type == "cuda":
        return {"type": "cuda", "name": torch.cuda.get_device_name(dev), "gpu_sharing": gpu_sharing()}
    return {"type": dev.type, "name": platform.processor() or platform.machine() or None}


__all__ = ["describe_device", "git_commit", "sha256_file", "sha256_files", "versions"]
