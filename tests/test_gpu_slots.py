"""GPU slots for local multi-GPU runs: distinct devices for concurrent jobs, freed on crash."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import pytest

from gs import gpu_slots


def _hold(lock_dir, devices, barrier, out, hold_s):
    with gpu_slots.gpu_slot(devices, lock_dir, poll=0.05, timeout=60) as dev:
        out.put((os.getpid(), dev, os.environ.get("CUDA_VISIBLE_DEVICES")))
        barrier.wait(timeout=60)  # every holder has its slot at the same time
        time.sleep(hold_s)


def _claim_and_report(lock_dir, devices, out):
    with gpu_slots.gpu_slot(devices, lock_dir, poll=0.05, timeout=60) as dev:
        out.put(dev)


def _hold_forever(lock_dir, devices, ready):
    with gpu_slots.gpu_slot(devices, lock_dir, poll=0.05) as dev:
        ready.put(dev)
        time.sleep(600)


def test_concurrent_jobs_get_distinct_devices(tmp_path):
    ctx = mp.get_context("fork")
    devices = ["0", "1", "2"]
    barrier, out = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_hold, args=(tmp_path, devices, barrier, out, 0.2)) for _ in range(3)]
    for p in procs:
        p.start()
    got = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(d for _, d, _ in got) == devices  # all three held at once, none shared


def test_a_fourth_job_waits_for_a_free_slot(tmp_path):
    devices = ["0", "1"]
    with gpu_slots.gpu_slot(devices, tmp_path) as a, gpu_slots.gpu_slot(devices, tmp_path) as b:
        assert {a, b} == {"0", "1"}
        with pytest.raises(TimeoutError):
            with gpu_slots.gpu_slot(devices, tmp_path, poll=0.05, timeout=0.3):
                pass
    with gpu_slots.gpu_slot(devices, tmp_path, timeout=1) as c:  # released on exit
        assert c == "0"


def test_slot_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(RuntimeError):
        with gpu_slots.gpu_slot(["7"], tmp_path):
            raise RuntimeError("training failed")
    with gpu_slots.gpu_slot(["7"], tmp_path, timeout=1) as d:
        assert d == "7"


def test_a_killed_holder_frees_its_slot(tmp_path):
    ctx = mp.get_context("fork")
    ready, out = ctx.Queue(), ctx.Queue()
    holder = ctx.Process(target=_hold_forever, args=(tmp_path, ["0", "1"], ready))
    holder.start()
    try:
        assert ready.get(timeout=60) == "0"
        with gpu_slots.gpu_slot(["0", "1"], tmp_path, timeout=1) as d:
            assert d == "1"  # "0" is held by the live process
        os.kill(holder.pid, signal.SIGKILL)  # a job killed mid-training: no cleanup runs
        holder.join(timeout=30)
        other = ctx.Process(target=_claim_and_report, args=(tmp_path, ["0"], out))
        other.start()
        assert out.get(timeout=60) == "0"  # the kernel dropped the dead holder's lock
        other.join(timeout=30)
    finally:
        if holder.is_alive():
            holder.kill()
            holder.join()


def test_visible_gpus_sources():
    assert gpu_slots.visible_gpus({"GS_BENCH_GPUS": "3"}) == ["0", "1", "2"]
    assert gpu_slots.visible_gpus({"GS_BENCH_GPUS": "2,5", "CUDA_VISIBLE_DEVICES": "0"}) == ["2", "5"]
    assert gpu_slots.visible_gpus({"CUDA_VISIBLE_DEVICES": "1,3"}) == ["1", "3"]
    assert gpu_slots.visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert gpu_slots.visible_gpus({"GS_BENCH_GPUS": "0", "CUDA_VISIBLE_DEVICES": "0,1"}) == []  # off


def test_job_gpu_narrows_cuda_visible_devices(tmp_path, monkeypatch):
    monkeypatch.setenv("GS_BENCH_GPU_LOCKS", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    for var in gpu_slots.UNDER_SLURM_VARS + ("GS_BENCH_GPUS",):
        monkeypatch.delenv(var, raising=False)
    lines = []
    with gpu_slots.job_gpu(True, log=lines.append) as dev:
        assert dev == "4" and os.environ["CUDA_VISIBLE_DEVICES"] == "4"
        with gpu_slots.gpu_slot(["4", "6"], tmp_path, timeout=1) as other:
            assert other == "6"  # another job on the same machine gets the other GPU
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,6" and "CUDA_VISIBLE_DEVICES=4" in lines[0]
    with gpu_slots.job_gpu(False) as dev:  # a CPU job: untouched
        assert dev is None and os.environ["CUDA_VISIBLE_DEVICES"] == "4,6"


def test_job_gpu_leaves_slurm_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("GS_BENCH_GPU_LOCKS", str(tmp_path))
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,2")
    lines = []
    with gpu_slots.job_gpu(True, log=lines.append):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "1,2"
    assert not list(tmp_path.iterdir()) and "SLURM" in lines[0]


def test_two_seats_per_gpu_spread_over_the_gpus_first(tmp_path):
    devices = ["0", "1"]
    with gpu_slots.gpu_slot(devices, tmp_path, per_device=2) as a, \
            gpu_slots.gpu_slot(devices, tmp_path, per_device=2) as b:
        assert (a, b) == ("0", "1")  # one job on each GPU before a GPU takes a second
        with gpu_slots.gpu_slot(devices, tmp_path, per_device=2) as c, \
                gpu_slots.gpu_slot(devices, tmp_path, per_device=2) as d:
            assert (c, d) == ("0", "1")
            with pytest.raises(TimeoutError):  # four seats, four holders: a fifth waits
                with gpu_slots.gpu_slot(devices, tmp_path, per_device=2, poll=0.05, timeout=0.3):
                    pass


def test_jobs_per_gpu_reads_the_environment():
    assert gpu_slots.jobs_per_gpu({}) == 1
    assert gpu_slots.jobs_per_gpu({"GS_BENCH_JOBS_PER_GPU": "2"}) == 2
    for bad in ("0", "two", "-1"):
        with pytest.raises(ValueError, match="GS_BENCH_JOBS_PER_GPU"):
            gpu_slots.jobs_per_gpu({"GS_BENCH_JOBS_PER_GPU": bad})


def test_one_gpu_jobs_run_alone_and_record_it(tmp_path, monkeypatch):
    """On a machine with ONE GPU a second GPU job waits for the first (solo timings), and each
    job's results can tell that it had the GPU alone."""
    from gs.runtime import gpu_sharing

    monkeypatch.setenv("GS_BENCH_GPU_LOCKS", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    for var in gpu_slots.UNDER_SLURM_VARS + ("GS_BENCH_GPUS", "GS_BENCH_JOBS_PER_GPU"):
        monkeypatch.delenv(var, raising=False)
    assert gpu_sharing()["exclusive"] is None  # outside the pipeline: unknown
    with gpu_slots.job_gpu(True, log=lambda msg: None) as dev:
        assert dev == "0"
        assert gpu_sharing() == {"exclusive": True, "jobs_per_gpu": 1,
                                 "how": "gpu slot lock, one job per GPU"}
        with pytest.raises(TimeoutError):  # the only GPU is taken: a second job waits
            with gpu_slots.gpu_slot(["0"], tmp_path, poll=0.05, timeout=0.3):
                pass
    assert gpu_sharing()["exclusive"] is None


def test_opt_in_sharing_is_recorded(tmp_path, monkeypatch):
    from gs.runtime import gpu_sharing

    monkeypatch.setenv("GS_BENCH_GPU_LOCKS", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("GS_BENCH_JOBS_PER_GPU", "2")
    for var in gpu_slots.UNDER_SLURM_VARS + ("GS_BENCH_GPUS",):
        monkeypatch.delenv(var, raising=False)
    with gpu_slots.job_gpu(True, log=lambda msg: None):
        assert gpu_sharing()["exclusive"] is False and gpu_sharing()["jobs_per_gpu"] == 2
        with gpu_slots.gpu_slot(["0"], tmp_path, per_device=2, timeout=1) as other:
            assert other == "0"  # the second seat of the same GPU
