"""One job per GPU, on a machine with one GPU or several.

Snakemake counts a ``gpu`` resource (``--resources gpu=N`` caps concurrent GPU jobs) but never
says *which* GPU a job should use, so without help every job lands on device 0. A GPU job
therefore claims a free slot before it touches CUDA: one lock file per visible device, taken
with ``fcntl.flock`` (atomic; the kernel drops the lock when the holder exits or is killed, so
a crashed job never keeps its GPU), and ``CUDA_VISIBLE_DEVICES`` is narrowed to that device.

Under SLURM nothing is done: SLURM sets ``CUDA_VISIBLE_DEVICES`` for the job itself.

Environment:
  ``GS_BENCH_GPUS``      the devices to share: a count (``4``) or ids (``0,2``); overrides
                         ``CUDA_VISIBLE_DEVICES`` and ``nvidia-smi``. ``0`` turns slots off.
  ``GS_BENCH_GPU_LOCKS`` the folder of the lock files (default: a per-user folder in the
                         system temp dir, shared by every pipeline of this machine and user).
  ``GS_BENCH_JOBS_PER_GPU`` jobs that may share one GPU (default 1: every GPU job runs alone,
                         also on a machine with one GPU, so its timings are solo figures). More
                         is worth it only with CUDA MPS running (``nvidia-cuda-mps-control -d``):
                         without MPS the GPU time-slices between processes. Results of shared
                         runs record it (gs.runtime.gpu_sharing) and the tables mark them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Mapping

from gs.runtime import ENV as SHARING_ENV

UNDER_SLURM_VARS = ("SLURM_JOB_ID", "SLURM_JOBID")


def under_slurm(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return any(env.get(k) for k in UNDER_SLURM_VARS)


def _count_devices() -> int:
    """GPUs of this machine, counted without initialising CUDA in this process (a CUDA
    runtime initialised here would ignore a later CUDA_VISIBLE_DEVICES)."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:  # no nvidia-smi: ask torch in a child process
        out = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.device_count())"],
                             capture_output=True, text=True, timeout=120)
        return int(out.stdout.strip() or 0) if out.returncode == 0 else 0
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0


def visible_gpus(env: Mapping[str, str] | None = None) -> list[str]:
    """The device ids jobs may share: ``GS_BENCH_GPUS``, else ``CUDA_VISIBLE_DEVICES``, else
    every GPU of the machine (``nvidia-smi``)."""
    env = os.environ if env is None else env
    given = env.get("GS_BENCH_GPUS", "").strip()
    if given:
        if given.isdigit():
            return [str(i) for i in range(int(given))]
        return [g.strip() for g in given.split(",") if g.strip()]
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        return [g.strip() for g in cvd.split(",") if g.strip() and g.strip() != "-1"]
    return [str(i) for i in range(_count_devices())]


def default_lock_dir() -> Path:
    given = os.environ.get("GS_BENCH_GPU_LOCKS")
    if given:
        return Path(given)
    return Path(tempfile.gettempdir()) / f"gs-bench-gpu-slots-{os.getuid()}"


def _lock_name(device: str, seat: int = 0) -> str:
    return "gpu-" + re.sub(r"[^A-Za-z0-9_.-]", "_", device) + (f"-{seat}" if seat else "") + ".lock"


def jobs_per_gpu(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    given = env.get("GS_BENCH_JOBS_PER_GPU", "").strip() or "1"
    if not given.isdigit() or int(given) < 1:
        raise ValueError(f"GS_BENCH_JOBS_PER_GPU must be a whole number >= 1, got {given!r}")
    return int(given)


@contextlib.contextmanager
def gpu_slot(devices: list[str], lock_dir: str | Path | None = None, poll: float = 1.0,
             timeout: float | None = None, per_device: int = 1) -> Iterator[str]:
    """Hold one of ``per_device`` seats on one of ``devices`` for the block and yield the
    device id; waits while all are taken. Seats fill device by device in turn (every device's
    first seat before any second one), so jobs spread over the GPUs first.

    The lock is an ``flock`` on ``lock_dir/gpu-<id>[-<seat>].lock``: released when the block
    ends, when it raises, and by the kernel when the process dies. Raises TimeoutError after
    ``timeout`` seconds without a free seat (None: wait as long as it takes)."""
    if not devices:
        raise ValueError("no GPU to claim")
    lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    seats = [(device, seat) for seat in range(per_device) for device in devices]
    start = time.monotonic()
    while True:
        for device, seat in seats:
            f = open(lock_dir / _lock_name(device, seat), "a+")
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            try:
                f.seek(0)
                f.truncate()
                f.write(f"pid {os.getpid()} device {device} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
                f.flush()
                yield device
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
                f.close()
            return
        if timeout is not None and time.monotonic() - start > timeout:
            raise TimeoutError(f"no free GPU among {devices} after {timeout:.0f} s (locks in {lock_dir})")
        time.sleep(poll)


@contextlib.contextmanager
def job_gpu(wants_gpu: bool, log=print) -> Iterator[str | None]:
    """What a GPU job of the pipeline runs inside: with several GPUs visible and no SLURM,
    claim a slot and narrow ``CUDA_VISIBLE_DEVICES`` to it (before torch initialises CUDA);
    otherwise leave the environment alone. Yields the device id used, or None."""
    if not wants_gpu:
        yield None
        return
    if under_slurm():
        log(f"gpu: CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')} (set by SLURM)")
        with _sharing("slurm"):
            yield os.environ.get("CUDA_VISIBLE_DEVICES")
        return
    devices = visible_gpus()
    per_device = jobs_per_gpu()
    if not devices:  # no GPU here (GS_BENCH_GPUS=0, or a CPU machine): nothing to claim
        yield None
        return
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_initialized():
        log("gpu: CUDA already initialised in this process; not claiming a GPU slot")
        yield None
        return
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    t0 = time.monotonic()
    sharing = "exclusive" if per_device == 1 else f"shared:{per_device}"
    with gpu_slot(devices, per_device=per_device) as device, _sharing(sharing):
        os.environ["CUDA_VISIBLE_DEVICES"] = device
        log(f"gpu: CUDA_VISIBLE_DEVICES={device} (slot of {','.join(devices)}, {sharing}, "
            f"waited {time.monotonic() - t0:.1f} s)")
        try:
            yield device
        finally:
            if before is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = before


@contextlib.contextmanager
def _sharing(value: str) -> Iterator[None]:
    """Tell the job (gs.runtime.gpu_sharing) how it holds its GPU, for the block."""
    before = os.environ.get(SHARING_ENV)
    os.environ[SHARING_ENV] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(SHARING_ENV, None)
        else:
            os.environ[SHARING_ENV] = before
