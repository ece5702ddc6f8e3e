"""The presets that read scenes from the user's disk: the folder comes from the command line
(``--config local_root=...``), and a missing folder is one clear line before any job runs."""

from __future__ import annotations

import re

import pytest

from e2e_helpers import REPO, snakemake

LOCAL_PRESETS = sorted(p.name for p in (REPO / "config").glob("local*.yaml"))


@pytest.mark.parametrize("preset", LOCAL_PRESETS)
def test_without_a_scenes_folder_is_one_clear_line(tmp_path, preset):
    run = snakemake("-n", "--configfile", str(REPO / "config" / preset), cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "no folder of scenes given; run with --config local_root=" in out
    assert "Traceback" not in out and not (tmp_path / "results").exists()


@pytest.mark.parametrize("preset", LOCAL_PRESETS)
def test_missing_scenes_folder_is_named(tmp_path, preset):
    run = snakemake("-n", "--configfile", str(REPO / "config" / preset),
                    "--config", f"local_root={tmp_path / 'nowhere'}", cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode != 0 and f"'{tmp_path / 'nowhere'}' does not exist" in out


def test_gpu_preset_runs_every_method_on_two_scenes(tmp_path):
    """config/local_gpu.yaml: every registered method at its default (HGSC at two rate points),
    on fern and beer_can (the DAG only; the scenes need not be real for a dry run)."""
    from gs.methods.registry import METHODS

    for scene in ("fern", "beer_can"):
        (tmp_path / "scenes" / scene).mkdir(parents=True)
    run = snakemake("-n", "--quiet", "rules", "--configfile", str(REPO / "config" / "local_gpu.yaml"),
                    "--config", f"local_root={tmp_path / 'scenes'}", cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", out, flags=re.M))
    assert counts["prepare_scene"] == "2" and counts["train_baseline"] == "2"
    n_variants = {"gns": 1, "argp": 1, "edim": 1, "nsvqgs": 1, "hgsc": 2}
    assert set(n_variants) | {"3dgs"} == set(METHODS)
    assert counts["evaluate"] == str(2 * (1 + sum(n_variants.values())))
