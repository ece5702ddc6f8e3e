"""The HGSC decoder's worker processes inside a Snakemake ``script:`` job: the workers must not
re-run the job's script (it needs the ``snakemake`` object only the job has)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from e2e_helpers import TINY_CONFIG, snakemake


@pytest.mark.slow
def test_compress_rule_decodes_in_worker_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("GS_DECODE_WORKERS", "2")  # a pool even below PARALLEL_MIN_SYMBOLS
    target = "results/synthetic/tiny/hgsc@3dgs/default@default/codec_stats.json"
    run = snakemake(target, "--cores", "2", "--configfile", str(TINY_CONFIG), cwd=tmp_path)
    log = tmp_path / "results/logs/compress/synthetic/tiny/hgsc@3dgs/default@default.log"
    detail = log.read_text()[-4000:] if log.exists() else run.stderr[-4000:]
    assert run.returncode == 0, f"compress failed:\n{detail}"
    stats = json.loads((tmp_path / target).read_text())
    assert stats["num_gaussians"] > 0 and stats["size_bytes"] > 0


def test_workers_do_not_rerun_a_main_script_without_a_guard(tmp_path):
    """A plain script (no ``if __name__ == "__main__"``) that decodes with two workers runs
    once: a re-run in a worker would print a second line and fail on the missing name."""
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        from gs.codecs.column_streams import decode_columns, encode_column
        print("main ran", flush=True)
        must_exist_only_in_the_parent  # noqa: F821 (defined by the runner below, like snakemake)
        cols = [np.arange(5000) % 7, np.arange(5000) % 5]
        streams = [encode_column(c, 8) for c in cols]
        (out,) = decode_columns([(streams, 5000, [8, 8])], workers=2)
        assert (out.T == np.stack(cols)).all()
        print("decoded", flush=True)
    """))
    runner = (f"import runpy; runpy.run_path({str(script)!r}, "
              "init_globals={'must_exist_only_in_the_parent': 1}, run_name='__main__')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    run = subprocess.run([sys.executable, "-c", runner], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("main ran") == 1 and "decoded" in run.stdout
