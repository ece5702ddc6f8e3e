"""Failure handling of the pipeline: a training job killed mid-way (SIGKILL, as the OOM killer
or a SLURM time limit would) leaves nothing Snakemake takes for a finished job, and the rerun
resumes from its checkpoint instead of starting over."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from e2e_helpers import REPO, TINY_CONFIG, snakemake
from gs import pipeline


@pytest.mark.slow
def test_killed_training_leaves_no_outputs_and_resumes(tmp_path):
    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    cfg.update(iterations=200, checkpoint_every=10)
    conf = tmp_path / "config.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    base, variant = pipeline.baseline_method()
    run = next(r for r in pipeline.runs(cfg) if r.method == base and r.variant == variant)
    run_dir = tmp_path / run.dir("results")
    target = f"{run.dir('results')}/point_cloud.ply"

    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "1",
           "--configfile", str(conf), "--directory", str(tmp_path), target]
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        end = time.monotonic() + 600
        while not list((run_dir / "checkpoints").glob("ckpt_*.pt")) and proc.poll() is None:
            assert time.monotonic() < end, "no checkpoint written"
            time.sleep(0.2)
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)  # snakemake and its job, no cleanup
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    # nothing that looks finished: the model and the stats are written last, atomically
    assert not (run_dir / "point_cloud.ply").exists() and not (run_dir / "train_stats.json").exists()
    assert snakemake("--unlock", "--configfile", str(conf), cwd=tmp_path).returncode == 0
    dry = snakemake(target, "-n", "--configfile", str(conf), cwd=tmp_path)
    assert dry.returncode == 0 and "train" in dry.stdout, dry.stdout[-2000:]

    again = snakemake(target, "--cores", "1", "--configfile", str(conf), cwd=tmp_path, timeout=900)
    assert again.returncode == 0, again.stderr[-4000:]
    stats = json.loads((run_dir / "train_stats.json").read_text())
    assert "ckpt_" in str(stats["resumed_from"]) and stats["iterations"] == 200
    log = (tmp_path / "results" / "logs" / "train" / run.dataset / run.scene / run.method / f"{run.variant}.log")
    assert "resuming from the checkpoints" in log.read_text()


# ------------------------------------------------------------------------------ collapsed runs
def test_kth_largest_of_no_gaussians_is_zero():
    """GNS's controller once every Gaussian is pruned (e.g. opacity_lr 1e8): no IndexError."""
    import torch

    from gs.methods.gns import kth_largest

    assert kth_largest(torch.empty(0), 5) == 0.0
    assert kth_largest(torch.tensor([0.1, 0.9, 0.5]), 2) == pytest.approx(0.5)


def test_collapse_rules():
    from gs.train.trainer import collapse

    rising = [{"psnr": p} for p in (10.0, 14.0, 18.0, 20.0)]
    assert collapse(rising, initial_points=1000, final_count=500) is None
    assert collapse(rising[:1], initial_points=1000, final_count=10) is None  # 1 %: not below
    few = collapse(rising, initial_points=1000, final_count=9)
    assert few["kind"] == "gaussian_count" and "9 Gaussians" in few["reason"]
    falling = [{"psnr": p} for p in (12.0, 15.0, 9.0, 9.5, 9.4)]
    low = collapse(falling, initial_points=1000, final_count=800)
    assert low["kind"] == "psnr" and low["first_psnr"] == 12.0 and low["final_psnr"] < 12.0
    # started from a trained state (a prefix, a resume): its first logged PSNR is no floor
    assert collapse(falling, initial_points=1000, final_count=800, from_scratch=False) is None


def test_collapsed_training_run_is_flagged(tmp_path, capsys):
    """A run that prunes nearly everything still finishes, with a warning in its log and a
    ``collapse`` entry in train_stats.json."""
    import torch

    from gs.data import generate_scene, load_scene
    from gs.methods.baseline import BaselineStrategy
    from gs.train import ops
    from gs.train.trainer import TrainConfig, Trainer, TrainingCollapsed

    class PruneAlmostAll(BaselineStrategy):
        def __init__(self, keep):
            super().__init__()
            self.keep = keep

        def after_step(self, ctx, step, out):
            if step == 3:
                mask = torch.ones(ctx.model.num_gaussians, dtype=torch.bool, device=ctx.model.device)
                mask[:self.keep] = False
                ops.remove(ctx.model, ctx.optimizer, mask, self.state)
                return
            super().after_step(ctx, step, out)

    scene = load_scene(generate_scene(tmp_path / "scene", num_views=6, width=32, height=24, num_points=400))
    cfg = TrainConfig(iterations=6, backend="torch", device="cpu", progress=False, log_every=2)
    Trainer(scene, PruneAlmostAll(2), cfg, tmp_path / "run", label="tiny/prune").train()
    stats = json.loads((tmp_path / "run" / "train_stats.json").read_text())
    assert stats["num_gaussians"] == 2
    assert stats["collapse"]["kind"] == "gaussian_count"
    err = capsys.readouterr().err
    assert "warning: training tiny/prune collapsed: 2 Gaussians" in err

    # nothing left (GNS with opacity_lr 1e8): one clear error, no model written
    with pytest.raises(TrainingCollapsed, match="every Gaussian was pruned by iteration 4"):
        Trainer(scene, PruneAlmostAll(0), cfg, tmp_path / "empty", label="tiny/prune").train()
    assert not (tmp_path / "empty" / "point_cloud.ply").exists()


# ------------------------------------------------------------------------------ one run per results folder
HOLD = ("import sys, time; from gs import results_lock; results_lock.acquire(sys.argv[1]); "
        "print('held', flush=True); time.sleep(600)")


def test_results_lock_is_exclusive_and_dies_with_its_holder(tmp_path):
    from gs import results_lock

    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "res")], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(results_lock.ResultsLocked, match=f"pid {holder.pid} on .*wait for it"):
            results_lock.acquire(tmp_path / "res")
    finally:
        holder.kill()  # SIGKILL: no cleanup, the kernel drops the lock
        holder.wait(timeout=30)
    results_lock.acquire(tmp_path / "res")
    results_lock.release(tmp_path / "res")


@pytest.mark.slow
def test_second_pipeline_on_the_same_results_folder_fails_fast(tmp_path):
    """Two working directories (as two checkouts) sharing one results_dir: while the first
    runs, the second stops at its start with one clear message and runs nothing."""
    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    cfg.update(iterations=400, results_dir=str(tmp_path / "shared-results"), methods={"3dgs": None})
    conf = tmp_path / "config.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    lock = tmp_path / "shared-results" / ".gsbench.lock"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "1",
           "--configfile", str(conf), "--directory"]
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen([*cmd, str(first_dir)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        end = time.monotonic() + 600
        while not (lock.exists() and lock.read_text().strip()) and first.poll() is None:
            assert time.monotonic() < end, "the first run never took the lock"
            time.sleep(0.2)
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        second = subprocess.run([*cmd, str(second_dir)], cwd=REPO, capture_output=True, text=True, timeout=600)
        out = second.stdout + second.stderr
        assert second.returncode != 0 and "is in use by another pipeline run" in out, out[-3000:]
        assert f"working directory {first_dir}" in out
        assert not (second_dir / ".data").exists()  # it ran nothing
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)


@pytest.mark.slow
def test_killed_forcerun_is_redone_by_the_next_plain_run(tmp_path):
    """Snakemake deletes a forced job's outputs before it runs. A `--forcerun compress` killed
    there must not leave a state the next plain run takes as finished (the old metrics.json
    with its bitstream gone): the next run redoes compress and the evaluation after it."""
    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    cfg.update(iterations=20, methods={"3dgs": None, "hgsc": None})
    conf = tmp_path / "config.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    first = snakemake("--cores", "1", "--configfile", str(conf), cwd=tmp_path, timeout=900)
    assert first.returncode == 0, first.stderr[-4000:]
    run = next(r for r in pipeline.runs(cfg) if r.method.startswith("hgsc@"))
    run_dir = tmp_path / run.dir("results")
    assert (run_dir / "bitstream").is_dir() and (run_dir / "metrics.json").is_file()

    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "1",
           "--configfile", str(conf), "--directory", str(tmp_path), "--forcerun", "compress"]
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        end = time.monotonic() + 600
        while (run_dir / "codec_stats.json").exists() and proc.poll() is None:  # deleted as the job starts
            assert time.monotonic() < end, "the forced compress job never started"
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert not (run_dir / "codec_stats.json").exists() and (run_dir / "metrics.json").exists()

    assert snakemake("--unlock", "--configfile", str(conf), cwd=tmp_path).returncode == 0
    dry = snakemake("-n", "--configfile", str(conf), cwd=tmp_path)
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0 and "Nothing to be done" not in out, out[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", out, flags=re.M))
    assert jobs.get("compress") == "1" and jobs.get("evaluate") == "1", out[-3000:]
