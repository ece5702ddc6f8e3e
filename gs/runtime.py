"""How the running job holds its GPU, as the pipeline's GPU slot claim left it in the environment.

Timings (train seconds, FPS) and peak memory are solo figures only when the job had its GPU
alone; every train_stats.json and metrics JSON records this, and the tables mark shared runs.
"""

from __future__ import annotations

import os
from typing import Any

#: set by gs.gpu_slots.job_gpu: "exclusive", "shared:<jobs per GPU>" or "slurm"
ENV = "GS_BENCH_GPU_SHARING"


def gpu_sharing() -> dict[str, Any]:
    """``{"exclusive": bool | None, "jobs_per_gpu": int | None, "how": str}``.

    ``exclusive`` is True when no other job of the pipeline could run on this GPU at the same
    time (one seat per GPU, or SLURM's allocation), False when the GPU was opened to several
    jobs (``GS_BENCH_JOBS_PER_GPU`` > 1), None when nothing claimed it (e.g. the command line
    outside the pipeline, or slots turned off)."""
    value = os.environ.get(ENV, "").strip()
    if value == "exclusive":
        return {"exclusive": True, "jobs_per_gpu": 1, "how": "gpu slot lock, one job per GPU"}
    if value == "slurm":
        return {"exclusive": True, "jobs_per_gpu": 1, "how": "GPU allocated by SLURM"}
    if value.startswith("shared:") and value[7:].isdigit():
        n = int(value[7:])
        return {"exclusive": n <= 1, "jobs_per_gpu": n, "how": f"gpu slot lock, up to {n} jobs per GPU"}
    return {"exclusive": None, "jobs_per_gpu": None,
            "how": "not claimed through the pipeline's GPU slots: other jobs may have shared the GPU"}


__all__ = ["ENV", "gpu_sharing"]
