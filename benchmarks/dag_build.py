"""Benchmark: how long `snakemake -n` takes to build the DAG of the three paper presets together
(13 scenes x every method x every variant). Writes benchmarks/results/dag_build.md.

    python benchmarks/dag_build.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def merged_preset(tmp: Path) -> Path:
    """The three presets in one config, every variant of every method."""
    cfg: dict = {}
    for name in ("mipnerf360", "tandt", "deepblending"):
        part = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
        datasets = part.pop("datasets")
        cfg.update(part)
        cfg.setdefault("datasets", {}).update(datasets)
    cfg["methods"] = "all"
    cfg["default_variants"] = "all"
    out = tmp / "paper_all.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cfg = merged_preset(Path(d))
        times, jobs = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--cores", "1",
                                "--snakefile", str(REPO / "Snakefile"), "--directory", d, "--configfile", str(cfg)],
                               capture_output=True, text=True, cwd=REPO)
            times.append(time.perf_counter() - t0)
            if r.returncode != 0:
                sys.exit(f"snakemake -n failed:\n{r.stderr[-3000:]}")
            m = re.search(r"^total\s+(\d+)", r.stdout + r.stderr, re.M)
            jobs = int(m.group(1)) if m else jobs
    text = (f"# snakemake -n on mipnerf360 + tandt + deepblending, every method and variant\n\n"
            f"jobs in the DAG: {jobs}\n\nwall seconds over {args.repeats} runs: "
            f"{', '.join(f'{t:.2f}' for t in times)} (median {statistics.median(times):.2f})\n")
    out = REPO / "benchmarks" / "results" / "dag_build.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
