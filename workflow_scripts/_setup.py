"""Shared preamble of the workflow scripts: find this checkout's ``gs`` package, send the
script's output to the rule's log, pin torch to the rule's threads, and give a GPU job its own
GPU on a workstation with several (gs.gpu_slots; SLURM assigns GPUs itself)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the checkout's gs wins over nothing; an install works too


def wants_gpu(snakemake) -> bool:
    """Whether the rule's resources ask for a GPU (gpu=1: train_baseline, train, compress, encode, evaluate)."""
    try:
        return int(getattr(snakemake.resources, "gpu", 0) or 0) > 0
    except (AttributeError, TypeError, ValueError):
        return False


@contextlib.contextmanager
def logged(snakemake):
    """Redirect stdout/stderr (and logging) to the rule's first log file for the block."""
    log = snakemake.log[0] if len(snakemake.log) else os.devnull
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    threads = max(1, int(getattr(snakemake, "threads", 1) or 1))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    with open(log, "w", buffering=1) as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        logging.basicConfig(stream=f, level=logging.INFO, force=True,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from gs.gpu_slots import job_gpu

        with job_gpu(wants_gpu(snakemake)):  # before torch touches CUDA
            try:
                import torch

                torch.set_num_threads(threads)
            except ImportError:  # report-only scripts do not need torch
                pass
            try:
                yield
            except BaseException:
                import traceback

                traceback.print_exc(file=f)
                raise
