"""Shared by the pipeline tests: run Snakemake as a user would, and the one tiny end-to-end
run (done once per pytest session, kept under test-artifacts/ for inspection)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
TINY_CONFIG = REPO / "tests" / "data" / "tiny.yaml"


def snakemake(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m snakemake -s <repo>/Snakefile ARGS`` in ``cwd`` (default: the repo)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if cwd is not None:
        cmd += ["--directory", str(cwd)]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@functools.lru_cache(maxsize=None)
def tiny_run() -> Path:
    """Run the tiny config from data to HTML report in test-artifacts/e2e; return that folder.

    Raises AssertionError with Snakemake's output when a step fails."""
    work = ARTIFACTS / "e2e"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    run = snakemake("--cores", "2", "--configfile", str(TINY_CONFIG), cwd=work, timeout=1800)
    (work / "snakemake.log").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, f"snakemake failed:\n{run.stdout[-4000:]}\n{run.stderr[-6000:]}"
    rep = snakemake("--configfile", str(TINY_CONFIG), "--report", str(work / "report.html"), cwd=work)
    (work / "report.log").write_text(rep.stdout + rep.stderr)
    assert rep.returncode == 0, f"snakemake --report failed:\n{rep.stderr[-6000:]}"
    return work
