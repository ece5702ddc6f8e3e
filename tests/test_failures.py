"""Failure handling of the pipeline: a training job killed mid-way (SIGKILL, as the OOM killer
or a SLURM time limit would) leaves nothing Snakemake takes for a finished job, and the rerun
resumes from its checkpoint instead of starting over."""

from __future__ import annotations

import json
import os
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
