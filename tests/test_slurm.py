"""The SLURM profile on a real SLURM: a one-node cluster on localhost (munge, slurmctld, slurmd;
no accounting daemon, the profile queries job states with squeue) with two fake GPUs, the tiny
end-to-end config submitted through ``--profile profiles/slurm``, and the report checked.

Runs only as root with Debian's slurm-wlm + munge installed (.ci/run installs them); skipped
otherwise. The daemons run from a temporary folder and are stopped by PID in the teardown."""

from __future__ import annotations

import csv
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from e2e_helpers import ARTIFACTS, REPO, TINY_CONFIG, snakemake
from gs import pipeline

pytestmark = pytest.mark.slow

SBIN = ("slurmctld", "slurmd", "munged")
CLIENTS = ("sbatch", "sinfo", "squeue", "srun", "scancel", "munge", "unmunge")
ETC_CONF = Path("/etc/slurm/slurm.conf")  # the jobstep plugin's inner srun reads only this one
CTLD_PORT, SLURMD_PORT = 6817, 6818


def _which(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)),
                                      None)


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _skip_reason() -> str | None:
    missing = [n for n in SBIN + CLIENTS if _which(n) is None]
    if missing:
        return f"SLURM/munge not installed (missing {', '.join(missing)}; apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "needs root to start munged/slurmctld/slurmd"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm not installed"
    if ETC_CONF.exists() and not ETC_CONF.is_symlink():
        return f"{ETC_CONF} exists: a configured SLURM on this machine is left alone"
    if _port_in_use(CTLD_PORT) or _port_in_use(SLURMD_PORT):
        return "a slurmctld/slurmd is already listening on this machine"
    if not Path("/etc/munge/munge.key").is_file():
        return "no /etc/munge/munge.key (the munge package creates it)"
    return None


def _munge_ok() -> bool:
    try:
        cred = subprocess.run(["munge", "-n"], capture_output=True, timeout=10)
        back = subprocess.run(["unmunge"], input=cred.stdout, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return cred.returncode == 0 and back.returncode == 0


def _wait(cond, timeout: float, what: str, logs: list[Path] = ()) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


def _slurm_conf(root: Path) -> str:
    cpus = min(os.cpu_count() or 1, 2)
    # no more memory than the machine has (slurmd would drain the node), at most 20 GB
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    mem_mb = max(1000, min(20000, int(total_mb * 0.8)))
    return "\n".join([
        "ClusterName=gsbenchci",
        "SlurmctldHost=localhost",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"StateSaveLocation={root}/state",
        f"SlurmdSpoolDir={root}/spool",
        f"SlurmctldPidFile={root}/slurmctld.pid",
        f"SlurmdPidFile={root}/slurmd.pid",
        f"SlurmctldLogFile={root}/slurmctld.log",
        f"SlurmdLogFile={root}/slurmd.log",
        f"SlurmctldPort={CTLD_PORT}",
        f"SlurmdPort={SLURMD_PORT}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/filetxt",
        f"JobCompLoc={root}/jobcomp.txt",
        "SchedulerType=sched/backfill",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "DefMemPerCPU=500",  # without it a job with no memory request takes the whole node
        "MpiDefault=none",
        "ReturnToService=2",
        "MinJobAge=300",  # >= 3 x the profile's init seconds, so squeue still lists finished jobs
        "GresTypes=gpu",
        f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} Gres=gpu:2 State=UNKNOWN",
        "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


# two fake GPUs: any device file will do, SLURM only hands out their indices
GRES_CONF = "AutoDetect=off\nNodeName=localhost Name=gpu File=/dev/null\nNodeName=localhost Name=gpu File=/dev/zero\n"


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running one-node SLURM; yields the environment to talk to it."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="gsbench-slurm-"))
    procs: list[subprocess.Popen] = []
    made_link = False
    try:
        for d in ("state", "spool"):
            (root / d).mkdir()
        conf = root / "slurm.conf"
        conf.write_text(_slurm_conf(root))
        (root / "gres.conf").write_text(GRES_CONF)
        ETC_CONF.parent.mkdir(parents=True, exist_ok=True)
        if ETC_CONF.is_symlink():  # a stale link of an earlier, killed run
            ETC_CONF.unlink()
        ETC_CONF.symlink_to(conf)
        made_link = True
        if not _munge_ok():
            run_dir = Path("/run/munge")
            run_dir.mkdir(parents=True, exist_ok=True)
            shutil.chown(run_dir, "munge", "munge")
            with open(root / "munged.out", "w") as out:
                procs.append(subprocess.Popen([_which("munged"), "--foreground"], user="munge", group="munge",
                                              stdout=out, stderr=subprocess.STDOUT))
            _wait(_munge_ok, 20, "munged", [root / "munged.out"])
        for cmd in ([_which("slurmctld"), "-D", "-f", str(conf)],
                    [_which("slurmd"), "-D", "-N", "localhost", "-f", str(conf)]):
            with open(root / f"{Path(cmd[0]).name}.out", "w") as out:
                procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))
        env = {**os.environ, "SLURM_CONF": str(conf)}

        def idle() -> bool:
            r = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=env, timeout=10)
            return r.returncode == 0 and r.stdout.strip() == "idle"

        _wait(idle, 60, "the node to be idle", [root / "slurmctld.log", root / "slurmd.log"])
        yield {"root": root, "env": env}
    finally:
        for p in reversed(procs):  # slurmd, slurmctld, then munged (only if this fixture started it)
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
        if made_link and ETC_CONF.is_symlink():
            ETC_CONF.unlink()
        shutil.rmtree(root, ignore_errors=True)


def test_gpu_jobs_get_their_own_device(slurm_cluster):
    env = slurm_cluster["env"]
    cmd = ["srun", "-p", "debug", "-t", "1", "--mem", "50", "--gpus=1", "bash", "-c",
           "echo $CUDA_VISIBLE_DEVICES; sleep 3"]
    a = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    b = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    out = [a.communicate(timeout=60)[0].strip(), b.communicate(timeout=60)[0].strip()]
    assert a.returncode == b.returncode == 0, out
    # side by side (1 CPU each on a 2-CPU node), each sees exactly one device, not the same one
    assert sorted(out) == ["0", "1"], out


def test_tiny_config_through_the_slurm_profile(slurm_cluster, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster["root"] / "slurm.conf"))
    monkeypatch.setenv("SNAKEMAKE_SLURM_PARTITION", "debug")
    monkeypatch.delenv("SNAKEMAKE_SLURM_ACCOUNT", raising=False)
    work = ARTIFACTS / "slurm"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    gpu_rules = ("train_baseline", "train", "compress", "encode", "evaluate")
    # the tiny config trains on the CPU (gpu=0); ask for a (fake) GPU anyway so that the GPU
    # requests of the profile go through SLURM's gres; 1 CPU and little memory per job on this node
    args = [
        "--profile", str(REPO / "profiles" / "slurm"),
        "--configfile", str(TINY_CONFIG),
        "--slurm-init-seconds-before-status-checks", "2",
        "--seconds-between-status-checks", "3",
        "--latency-wait", "5",
        "--slurm-keep-successful-logs",
        "--set-threads", *[f"{r}=1" for r in (*gpu_rules, "prepare_scene")],
        "--set-resources", *[f"{r}:mem_mb=600" for r in (*gpu_rules, "prepare_scene")],
        *[f"{r}:gpu=1" for r in gpu_rules],
    ]  # partition, account and the other defaults: the profile's
    t0 = time.monotonic()
    run = snakemake(*args, cwd=work, timeout=1200)
    (work / "snakemake.log").write_text(run.stdout + run.stderr)
    wall = time.monotonic() - t0
    assert run.returncode == 0, f"slurm run failed after {wall:.0f} s:\n{run.stdout[-4000:]}\n{run.stderr[-8000:]}"
    # SLURM's own record: every job but the local target ran on the partition from the environment
    jobs = (slurm_cluster["root"] / "jobcomp.txt").read_text().splitlines()
    n_jobs = len(pipeline.runs(yaml.safe_load(TINY_CONFIG.read_text())))
    assert len(jobs) > n_jobs and all("Partition=debug" in j and "JobState=COMPLETED" in j for j in jobs), jobs
    # every job but the local target went through sbatch: the plugin keeps one log per job
    slurm_logs = list((work / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert any("rule_train" in str(p) for p in slurm_logs), slurm_logs
    # the train jobs ran under SLURM with a GPU given by SLURM (not by the local slot mechanism)
    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    train_logs = list((work / "results" / "logs" / "train").rglob("*.log"))
    assert train_logs and all(re.search(r"CUDA_VISIBLE_DEVICES=[01] \(set by SLURM\)", p.read_text())
                              for p in train_logs)
    res = work / "results"
    with open(res / "tables" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["method"], r["variant"]) for r in rows} == {(r.method, r.variant) for r in pipeline.runs(cfg)}
    rep = snakemake("--configfile", str(TINY_CONFIG), "--report", str(work / "report.html"), cwd=work, timeout=300)
    assert rep.returncode == 0, rep.stderr[-4000:]
    assert (work / "report.html").stat().st_size > 10_000
    print(f"slurm run: {wall:.0f} s wall")
