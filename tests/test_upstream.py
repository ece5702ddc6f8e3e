"""The authors' code as a second implementation (``implementations: [ours, upstream]``): the DAG,
the runner's steps and errors, the tables, and one run through the real rules with a fake
upstream repository (a local git repository whose train.py writes a PLY; no CUDA build)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from e2e_helpers import TINY_CONFIG, snakemake
from gs import pipeline
from gs.report import tables
from gs.upstream import runner, split_implementation, upstream_id
from gs.upstream.recipes import RECIPES, Recipe, SourceFix, recipe_for

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "-c", "init.defaultBranch=main"]


def tiny_config(**extra):
    return {**yaml.safe_load(TINY_CONFIG.read_text()), **extra}


#: the tiny config's methods but NSVQ-GS, whose authors' code runs only the full 30k schedule
SHORT_RUN_METHODS = {m: None for m in ("3dgs", "gns", "argp", "edim", "hgsc")}


# ------------------------------------------------------------------------------ DAG
def test_runs_add_an_upstream_twin_per_supported_training_run():
    with pytest.raises(pipeline.ConfigError, match="nsvqgs upstream: .* run it with iterations: 30000"):
        pipeline.runs(tiny_config(implementations=["ours", "upstream"]))  # NSVQ-GS's fixed schedule
    cfg = tiny_config(implementations=["ours", "upstream"], seeds=[0, 1], methods=SHORT_RUN_METHODS)
    runs = pipeline.runs(cfg)
    assert {r.method for r in pipeline.runs({**cfg, "iterations": 30000, "methods": {"nsvqgs": None}})} == {
        "nsvqgs", "nsvqgs~upstream"}
    ids = {(r.method, r.variant, r.seed) for r in runs}
    for m in ("3dgs", "gns", "argp"):
        v = pipeline._registry()[m].default_variant
        assert (upstream_id(m), v, None) in ids and (upstream_id(m), v, 1) in ids
    # EDIM's default (a post-training cut upstream runs by another script) and HGSC: none
    assert not any(r.method in ("edim~upstream", "hgsc~upstream") for r in runs)
    assert all(split_implementation(r.method)[1] == "ours" for r in pipeline.runs(tiny_config()))
    only = pipeline.runs(tiny_config(implementations=["upstream"], methods=SHORT_RUN_METHODS))
    assert only and all(split_implementation(r.method)[1] == "upstream" for r in only)
    with pytest.raises(pipeline.ConfigError, match="no selected run can be trained by the authors' code"):
        pipeline.runs(tiny_config(implementations=["upstream"], methods={"edim": {"variants": "decomp_0.1"}}))
    # the authors' codec over our model of the same scene and seed
    hg = pipeline.runs(tiny_config(implementations=["ours", "upstream"],
                                   methods={"3dgs": None, "hgsc": {"variants": ["default", "p0_b10"]}}))
    assert {(r.method, r.variant) for r in hg if "~" in r.method} == {
        ("3dgs~upstream", "default"), ("hgsc~upstream@3dgs", "default@default"), ("hgsc~upstream@3dgs", "p0_b10@default")}
    # a method's own implementations: the baseline ours only, the codec beside its authors' code
    alone = pipeline.runs(tiny_config(methods={"3dgs": {"implementations": ["ours"]},
                                               "hgsc": {"variants": "p0_b10", "implementations": ["ours", "upstream"]}}))
    assert sorted(r.method for r in alone) == ["3dgs", "hgsc@3dgs", "hgsc~upstream@3dgs"]
    assert pipeline.wildcard_constraints(tiny_config(methods={"hgsc": {"implementations": ["upstream"]}}))["ucodec"] \
        == "(?:hgsc)"
    assert split_implementation("hgsc~upstream@3dgs") == ("hgsc@3dgs", "upstream")
    assert upstream_id("hgsc@gns") == "hgsc~upstream@gns" and split_implementation("hgsc@gns") == ("hgsc@gns", "ours")
    gns = next(r for r in runs if r.method == "gns~upstream" and r.seed == 1)
    assert gns.dir("results") == "results/synthetic/tiny/gns~upstream/15pct~seed1"
    assert pipeline.Run.from_dir("synthetic", "tiny", "gns~upstream", "15pct~seed1") == gns


def test_wildcards_keep_implementation_and_seed_apart():
    import re

    cons = pipeline.wildcard_constraints(tiny_config(implementations=["ours", "upstream"], methods=SHORT_RUN_METHODS))
    run, variant = re.compile(cons["run"] + r"\Z"), re.compile(cons["rvariant"] + r"\Z")
    assert run.match("gns~upstream") and run.match("gns") and run.match("hgsc@3dgs") and run.match("hgsc~upstream@3dgs")
    assert not run.match("gns~seed1") and not run.match("hgsc~upstream") and run.match("nsvqgs~upstream")
    assert variant.match("15pct~seed1") and not variant.match("15pct~upstream")
    assert re.compile(cons["umethod"] + r"\Z").match("argp")
    assert pipeline.wildcard_constraints(tiny_config())["umethod"] == "(?!)"  # ours only: no upstream rule matches


def test_config_rejects_unknown_implementation(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(tiny_config(implementations=["theirs"])))
    run = snakemake("-n", "--configfile", str(p), cwd=tmp_path)
    assert run.returncode != 0 and "implementations" in run.stdout + run.stderr


@pytest.mark.slow
def test_dry_run_lists_the_upstream_jobs(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(tiny_config(implementations=["ours", "upstream"], methods=SHORT_RUN_METHODS)))
    run = snakemake("-n", "--configfile", str(p), cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    for m, v in (("3dgs", "default"), ("gns", "15pct"), ("argp", "default")):
        assert f"results/synthetic/tiny/{m}~upstream/{v}/point_cloud.ply" in out
        assert f"results/synthetic/tiny/{m}~upstream/{v}/metrics.json" in out
    assert "rule train_upstream:" in out
    # GNS's budget comes from the upstream baseline's count, not ours
    gns_job = out.split("output: results/synthetic/tiny/gns~upstream/15pct/point_cloud.ply")[0].rsplit("rule ", 1)[1]
    assert "3dgs~upstream/default/train_stats.json" in gns_job


# ------------------------------------------------------------------------------ recipes
def test_recipes_map_our_parameters_to_upstream_flags():
    argp = RECIPES["argp"]
    assert argp.args({"prune_quantile": 0.02, "freeze_quantile": 0.7, "recover_ratio": 0.25}) == [
        "--ctprune_ratio", "0.02", "--tp_prune_level", "0.7", "--recover_level", "0.25", "--disable_viewer"]
    assert not argp.supports({"freeze_gradients": True}) and argp.supports({})
    gns = RECIPES["gns"]
    assert gns.args({"budget_fraction": 0.15, "baseline_count": 1000}) == ["--final_budget", "150"]
    assert gns.args({"paper_budget": 600_000, "paper_budget_scale": 0.4}) == ["--final_budget", "240000"]
    assert not gns.supports({"sparse_steps": False})
    assert not RECIPES["edim"].supports({"final_prune_threshold": 0.1}) and RECIPES["edim"].supports({})
    fixes = {f.path: f.line for f in RECIPES["3dgs"].fixes}
    assert fixes["submodules/diff-gaussian-rasterization/cuda_rasterizer/rasterizer_impl.h"] == "#include <cstdint>"
    assert "--disable_viewer" not in gns.args({})  # GNS's train.py has no viewer flag


def test_edim_fixes_make_its_committed_code_runnable(tmp_path):
    """The replacing fixes of EDIM's recipe apply to the lines they name (texts as committed)."""
    (tmp_path / "scene").mkdir()
    (tmp_path / "scene/gaussian_model.py").write_text(
        "        new_s_k = nn.Parameter(new_s_k, requires_grad=self.train_sk)\n")
    (tmp_path / "train.py").write_text("import os\nimport wandb\n\nwandb.init(project='x')\nwandb.log({'a': 1})\n")
    runner.apply_fixes(tmp_path, Recipe("edim", fixes=tuple(f for f in RECIPES["edim"].fixes if f.replace)))
    assert "requires_grad=True" in (tmp_path / "scene/gaussian_model.py").read_text()
    code = (tmp_path / "train.py").read_text()
    assert "import wandb" not in code
    exec(compile(code, "train.py", "exec"), {})  # runs without the package: every wandb call does nothing


def test_protocol_becomes_the_inria_command_line(tmp_path):
    cmd = runner.train_command(RECIPES["3dgs"], tmp_path / "fern", tmp_path / "out", 30000,
                               {"images": "images_4", "resolution": -1, "test_every": 8}, {})
    assert cmd[1:] == ["train.py", "-s", str(tmp_path / "fern"), "-m", str(tmp_path / "out"), "--eval",
                       "--iterations", "30000", "--test_iterations", "30000", "--save_iterations", "30000",
                       "-i", "images_4", "--disable_viewer"]
    # ARGP's train.py sets its output folder from --model_name and overwrites -m with it
    argp = runner.train_command(RECIPES["argp"], tmp_path / "fern", tmp_path / "out", 30000,
                                {"images": "images_4", "resolution": -1, "test_every": 8}, {})
    assert argp[4:6] == ["--model_name", str(tmp_path / "out")] and "-m" not in argp
    assert runner.protocol_args("x", {"resolution": 2, "white_background": True}) == ["-r", "2", "-w"]
    with pytest.raises(runner.UpstreamError, match="every 8th image"):
        runner.protocol_args("x", {"test_every": 10})
    with pytest.raises(runner.UpstreamError, match="max_side=800"):
        runner.protocol_args("x", {"resolution": -1, "max_side": 800})
    with pytest.raises(runner.UpstreamError, match="-r 1, 2, 4 or 8"):
        runner.protocol_args("x", {"resolution": 3})


# ------------------------------------------------------------------------------ runner errors
def test_missing_nvcc_is_one_line(monkeypatch):
    monkeypatch.setattr(runner.shutil, "which", lambda name: None if name == "nvcc" else "/usr/bin/" + name)
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    with pytest.raises(runner.UpstreamError) as exc:
        runner.check_toolchain("3dgs", RECIPES["3dgs"])
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("3dgs~upstream: no CUDA toolkit: `nvcc` not found")


def test_unreachable_repository_is_one_line_and_leaves_nothing(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(runner.UpstreamError) as exc:
        runner.checkout(f"file://{tmp_path}/no-such-repo", "0" * 40, cache, Recipe("x"))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"cannot clone file://{tmp_path}/no-such-repo (no internet")
    assert not list(cache.glob("*/src*"))


def test_built_extensions_are_importable_from_the_checkout(tmp_path, monkeypatch):
    """The cache path is relative in a pipeline ({data_dir}/upstream); the script runs inside
    the checkout, so the extensions' folder must reach it as an absolute path."""
    from gs.model import GaussianModel

    monkeypatch.chdir(tmp_path)
    src = Path("cache/repo@abc/src")
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    GaussianModel.from_points(rng.uniform(-1, 1, (50, 3)), rng.uniform(0, 1, (50, 3))).save_ply(src / "model.ply")
    (src / "train.py").write_text("import fake_rasterizer\n" + FAKE_TRAIN)
    site = Path("cache/repo@abc/build/key")  # relative, as the pipeline's cache is
    site.mkdir(parents=True)
    (site / "fake_rasterizer.py").write_text("")
    monkeypatch.setattr(runner, "prepare_upstream", lambda *a, **k: (src, site))
    (tmp_path / "scene" / "sparse" / "0").mkdir(parents=True)
    stats = runner.run_upstream(Recipe("x", needs_cuda=False), "file:///nowhere", "a" * 40, tmp_path / "scene", {},
                                10, {}, tmp_path / "run" / "point_cloud.ply", tmp_path / "run" / "train_stats.json",
                                "cache")
    assert stats["num_gaussians"] == 50


def test_failed_run_writes_no_output(tmp_path, monkeypatch):
    monkeypatch.setattr(runner.shutil, "which", lambda name: None)
    model, stats = tmp_path / "run" / "point_cloud.ply", tmp_path / "run" / "train_stats.json"
    with pytest.raises(runner.UpstreamError, match="`git` not found"):
        runner.run_upstream(RECIPES["3dgs"], "https://example.org/x", "a" * 40, tmp_path, {}, 10, {}, model, stats,
                            tmp_path / "cache")
    assert not model.exists() and not stats.exists()


def test_fixes_unpack_then_patch_once(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "sub.zip", "w") as z:
        z.writestr("submodules/ext/impl.h", "#pragma once\n")
    recipe = Recipe("x", unpack=("sub.zip",), fixes=(SourceFix("submodules/ext/impl.h", "#include <cstdint>"),))
    runner.apply_fixes(tmp_path, recipe)
    runner.apply_fixes(tmp_path, recipe)  # idempotent
    assert (tmp_path / "submodules/ext/impl.h").read_text() == "#include <cstdint>\n#pragma once\n"
    runner.apply_fixes(tmp_path, Recipe("x", fixes=(SourceFix("missing.h", "#include <cfloat>"),)))
    assert not (tmp_path / "missing.h").exists()
    with pytest.raises(runner.UpstreamError, match="gone.zip is not in the repository"):
        runner.apply_fixes(tmp_path, Recipe("x", unpack=("gone.zip",)))


def test_replacing_fix_applies_once_and_fails_when_the_text_moved(tmp_path):
    (tmp_path / "model.py").write_text("x = nn.Parameter(v, requires_grad=self.train_sk)\n")
    fix = SourceFix("model.py", "requires_grad=self.train_sk", replace="requires_grad=True")
    runner.apply_fixes(tmp_path, Recipe("x", fixes=(fix,)))
    runner.apply_fixes(tmp_path, Recipe("x", fixes=(fix,)))  # idempotent
    assert (tmp_path / "model.py").read_text() == "x = nn.Parameter(v, requires_grad=True)\n"
    (tmp_path / "model.py").write_text("something else\n")
    with pytest.raises(runner.UpstreamError, match="model.py at HEAD does not contain"):
        runner.apply_fixes(tmp_path, Recipe("x", fixes=(fix,)))


def test_offline_sources_export_then_checkout_without_the_repository(tmp_path):
    commit = fake_upstream_repo(tmp_path / "repo")
    url = f"file://{tmp_path}/repo"
    runner.export_sources(tmp_path / "sources", {"x": (url, commit)})
    exported = tmp_path / "sources" / runner.source_folder_name(url, commit)
    assert (exported / "train.py").is_file()
    shutil.rmtree(tmp_path / "repo")  # the machine that runs it has no access to the repository
    recipe = Recipe("x", fixes=(SourceFix("train.py", "# fixed"),), needs_cuda=False)
    src = runner.checkout(url, commit, tmp_path / "cache", recipe, sources=tmp_path / "sources")
    assert src.joinpath("train.py").read_text().startswith("# fixed\n") and (src / runner.DONE).is_file()
    assert not exported.joinpath("train.py").read_text().startswith("# fixed")  # the export is left as it was
    with pytest.raises(runner.UpstreamError, match=r"\(or export it to "):
        runner.checkout(url, "1" * 40, tmp_path / "cache", recipe, sources=tmp_path / "sources")


def test_extensions_are_built_once_per_key(tmp_path, monkeypatch):
    src = tmp_path / "repo@abc" / "src"
    (src / "submodules" / "ext").mkdir(parents=True)
    calls = []

    def fake_run(cmd, what, cwd=None, env=None):  # stands in for pip: make the target folder
        calls.append(cmd)
        Path(cmd[cmd.index("--target") + 1]).mkdir(parents=True, exist_ok=True)

    monkeypatch.setattr(runner, "_run", fake_run)
    recipe = Recipe("x", extensions=("submodules/ext",))
    site = runner.build_extensions(src, recipe)
    assert site == src.parent / "build" / runner.build_key() and (site / runner.DONE).is_file()
    assert "torch" in site.name and "cuda" in site.name and len(calls) == 1
    assert runner.build_extensions(src, recipe) == site and len(calls) == 1  # cached
    assert "--no-build-isolation" in calls[0]


# ------------------------------------------------------------------------------ tables
def test_tables_label_and_compare_each_side_with_its_baseline():
    assert tables.submethod_label("gns~upstream", "15pct") == "gns 15pct (upstream)"
    assert tables.submethod_label("3dgs~upstream", "default") == "3dgs (upstream)"
    rows = [("3dgs", "default", 30.0), ("3dgs~upstream", "default", 31.0), ("gns", "15pct", 29.0),
            ("gns~upstream", "15pct", 29.5)]
    df = pd.DataFrame([{"dataset": "d", "scene": "s", "method": m, "variant": v, "seed": 0, "psnr": p,
                        "size_bytes": 100, "iterations": 10, "collapse": None} for m, v, p in rows])
    ref = tables.add_reference_columns(df).set_index("method")
    assert ref.at["gns~upstream", "ref_method"] == "3dgs~upstream" and ref.at["gns", "ref_method"] == "3dgs"
    assert ref.at["gns~upstream", "delta_psnr_ref"] == pytest.approx(-1.5)  # against the authors' baseline
    assert ref.at["gns", "delta_psnr_ref"] == pytest.approx(-1.0)
    assert ref["ref_method"].isna()[["3dgs", "3dgs~upstream"]].all()
    assert tables.method_order(["gns~upstream", "argp", "gns", "3dgs~upstream", "3dgs"]) == [
        "3dgs", "3dgs~upstream", "gns", "gns~upstream", "argp"]


def test_fidelity_pairs_each_run_with_its_upstream_twin():
    from gs.report.fidelity import fidelity_markdown, fidelity_table

    rows = [("3dgs", 0, 30.0, 1000, 100.0), ("3dgs~upstream", 0, 30.2, 1050, 150.0),
            ("3dgs", 1, 29.9, 990, 100.0), ("3dgs~upstream", 1, 30.1, 1040, 150.0),
            ("gns", 0, 29.0, 100, 50.0), ("gns~upstream", 0, 29.5, 150, 40.0), ("argp", 0, 28.0, 10, 10.0)]
    df = pd.DataFrame([{"dataset": "d", "scene": "s", "method": m, "variant": "default", "seed": sd, "psnr": p,
                        "ssim": 0.9, "num_gaussians": g, "size_mb": g / 1e3, "train_seconds": t,
                        "train_peak_memory_bytes": 2e9, "implementation": "upstream@abc" if "~" in m else "ours",
                        "solo_timings": not (m == "gns~upstream")}
                       for m, sd, p, g, t in rows])
    table = fidelity_table(df)
    mean = table[table["seed"].isna()]
    assert list(mean["method"]) == ["3dgs"] and mean.iloc[0]["seeds"] == "0,1"  # two seeds on both sides
    assert mean.iloc[0]["delta_psnr"] == pytest.approx(-0.2) and mean.iloc[0]["psnr_spread_ours"] == pytest.approx(0.1)
    assert mean.iloc[0]["gaussians_ours"] == pytest.approx(995) and mean.iloc[0]["within_tolerance"]
    t = table[table["seed"].notna()].set_index(["method", "seed"])
    assert len(t) == 3  # argp has no upstream twin
    assert t.at[("3dgs", 0), "delta_psnr"] == pytest.approx(-0.2) and t.at[("3dgs", 0), "within_tolerance"]
    assert t.at[("gns", 0), "gaussians_ratio"] == pytest.approx(100 / 150)
    assert not t.at[("gns", 0), "within_tolerance"]  # 0.5 dB and a third fewer Gaussians
    assert t.at[("gns", 0), "train_time_ratio"] == pytest.approx(1.25) and t.at[("gns", 0), "upstream"] == "upstream@abc"
    assert t.at[("3dgs", 0), "solo_timings"] and not t.at[("gns", 0), "solo_timings"]
    md = fidelity_markdown(fidelity_table(df))
    assert md.count("†") == 2  # the shared pair's seconds, and the note
    assert md.count("\n| s |") == 4 and "✗" in md and "✓" in md
    assert "| s | 3dgs | mean of 0, 1 | **29.95 / 30.15** (spread 0.10 / 0.10) | -0.20 |" in md
    assert "paper-layout" not in md  # no codec row


def test_fidelity_does_not_judge_a_pair_that_collapsed_on_both_sides():
    from gs.report.fidelity import fidelity_markdown, fidelity_table

    def row(method, gaussians, collapse):
        return {"dataset": "d", "scene": "s", "method": method, "variant": "tag", "seed": 0, "psnr": 5.3,
                "ssim": 0.3, "num_gaussians": gaussians, "size_mb": 0.0, "train_seconds": 10.0, "collapse": collapse,
                "implementation": "upstream@abc" if "~" in method else "ours"}

    both = fidelity_table(pd.DataFrame([row("edim", 1, "1 Gaussians at the end"), row("edim~upstream", 2, "2 Gaussians")]))
    assert both.at[0, "within_tolerance"] is None and both.at[0, "collapsed_ours"] and both.at[0, "collapsed_upstream"]
    assert "| both collapse |" in fidelity_markdown(both)
    ours_only = fidelity_table(pd.DataFrame([row("edim", 1, "1 Gaussians at the end"), row("edim~upstream", 2, None)]))
    assert ours_only.at[0, "within_tolerance"] == False  # noqa: E712 (numpy bool); one side collapsed: a real gap, judged as such
    assert "both collapse" not in fidelity_markdown(ours_only)


def test_fidelity_holds_a_codec_to_its_size_in_the_papers_layout():
    from gs.report.fidelity import fidelity_markdown, fidelity_table

    def row(method, paper_mb, size_mb, psnr=27.0):
        return {"dataset": "d", "scene": "s", "method": method, "variant": "k4k", "seed": 0, "psnr": psnr,
                "ssim": 0.9, "num_gaussians": 1000, "size_mb": size_mb, "size_mb_paper": paper_mb,
                "decode_seconds": 0.5, "train_seconds": 100.0, "implementation": "upstream@abc" if "~" in method else "ours"}

    close = fidelity_table(pd.DataFrame([row("nsvqgs", 9.5, 8.4), row("nsvqgs~upstream", 10.0, 10.0)]))
    assert close.at[0, "paper_size_ratio"] == pytest.approx(0.95) and close.at[0, "within_tolerance"]
    far = fidelity_table(pd.DataFrame([row("nsvqgs", 8.0, 8.4), row("nsvqgs~upstream", 10.0, 10.0)]))
    assert not far.at[0, "within_tolerance"]  # same PSNR and count, 20 % smaller in the paper's layout
    md = fidelity_markdown(far)
    assert "paper-layout MB ours / upstream" in md and "| 8.00 / 10.00 | 0.50 / 0.50 |" in md
    over_model = fidelity_table(pd.DataFrame([{**row("hgsc@3dgs", 2.0, 2.0), "variant": "p0_b10@default"},
                                              {**row("hgsc~upstream@3dgs", 2.1, 2.1), "variant": "p0_b10@default"}]))
    assert list(over_model["method"]) == ["hgsc@3dgs"] and over_model.at[0, "within_tolerance"]
    assert math.isnan(over_model.at[0, "train_s_ours"])  # the input's training is not the codec's


# ------------------------------------------------------------------------------ end to end
FAKE_TRAIN = '''\
"""A stand-in for the authors' train.py: records its command line, writes the given PLY."""
import json, shutil, sys
from pathlib import Path

argv = sys.argv[1:]
out, n = Path(argv[argv.index("-m") + 1]), argv[argv.index("--iterations") + 1]
(out / "point_cloud" / f"iteration_{n}").mkdir(parents=True)
shutil.copyfile(Path(__file__).with_name("model.ply"), out / "point_cloud" / f"iteration_{n}" / "point_cloud.ply")
(out / "argv.json").write_text(json.dumps(argv))
'''

PLUGIN = '''
"""A plug-in method whose upstream code is a local repository (no CUDA build)."""
from pathlib import Path

from gs.methods.baseline import BaselineStrategy
from gs.methods.registry import MethodSpec
from gs.upstream.recipes import Recipe, SourceFix

SPEC = MethodSpec(id="tinyup", kind="train", title="Tiny upstream test method", strategy=BaselineStrategy,
                  deviations_file=str(Path(__file__).with_name("deviations.yaml")))
RECIPE = Recipe("tinyup", fixes=(SourceFix("train.py", "# build fix applied"),), needs_cuda=False)
'''


def fake_upstream_repo(path: Path) -> str:
    """A git repository whose train.py writes a small valid 3DGS PLY; returns its commit."""
    from gs.model import GaussianModel

    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    GaussianModel.from_points(rng.uniform(-1, 1, (200, 3)), rng.uniform(0, 1, (200, 3))).save_ply(path / "model.ply")
    return git_repo(path, {"train.py": FAKE_TRAIN})


@pytest.fixture
def upstream_plugin(tmp_path, monkeypatch):
    commit = fake_upstream_repo(tmp_path / "fake-upstream")
    site = tmp_path / "site"
    (site / "gsb_tinyup").mkdir(parents=True)
    (site / "gsb_tinyup" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    (site / "gsb_tinyup" / "deviations.yaml").write_text(yaml.safe_dump(
        {"repository": f"file://{tmp_path}/fake-upstream", "commit": commit, "deviations": []}))
    info = site / "gsb_tinyup-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gsb-tinyup\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[gs_bench.methods]\ntinyup = gsb_tinyup:SPEC\n\n"
                                           "[gs_bench.upstream]\ntinyup = gsb_tinyup:RECIPE\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    from gs.methods.registry import METHODS

    METHODS.refresh()
    yield commit
    METHODS.refresh()


@pytest.mark.slow
def test_fake_upstream_through_the_rules(upstream_plugin, tmp_path):
    commit = upstream_plugin
    assert recipe_for("tinyup") is not None
    work = tmp_path / "work"
    work.mkdir()
    cfg = tiny_config(implementations=["ours", "upstream"], methods={"tinyup": None})
    (work / "c.yaml").write_text(yaml.safe_dump(cfg))
    run = snakemake("--cores", "2", "--configfile", str(work / "c.yaml"), cwd=work, timeout=1200)  # report too
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    up = work / "results/synthetic/tiny/tinyup~upstream/default"
    stats = json.loads((up / "train_stats.json").read_text())
    assert stats["implementation"] == f"upstream@{commit[:12]}" and stats["commit"] == commit
    assert stats["num_gaussians"] == 200 and stats["iterations"] == cfg["iterations"]
    assert "peak_memory_bytes" in stats  # measured around the authors' script (null without CUDA)
    assert stats["train_seconds"] == stats["script_seconds"]  # the stand-in prints no progress bar
    points = json.loads((work / "results/synthetic/tiny/scene.json").read_text())["num_points"]
    assert points <= 200 * 100 and stats["collapse"] is None  # the trainer's check, on the authors' count too
    built = json.loads((work / ".data/upstream/built/tinyup.json").read_text())  # compiled outside the GPU job
    assert built["commit"] == commit and (work / built["checkout"]).is_dir()
    argv = json.loads((up / "upstream_output" / "argv.json").read_text())
    assert "--eval" in argv and argv[argv.index("--save_iterations") + 1] == str(cfg["iterations"])
    scene_view = Path(argv[argv.index("-s") + 1])  # the run's own view of the scene: links, own sparse/0
    assert scene_view.is_relative_to((up / "upstream_output").resolve())
    assert (scene_view / "sparse/0/cameras.bin").is_symlink() and not (scene_view / "sparse/0").is_symlink()
    metrics = json.loads((up / "metrics.json").read_text())
    assert metrics["extra"]["implementation"] == f"upstream@{commit[:12]}" and metrics["num_gaussians"] == 200
    ours = json.loads((work / "results/synthetic/tiny/tinyup/default/metrics.json").read_text())
    assert ours["extra"]["implementation"] == "ours"
    df = pd.read_csv(work / "results/tables/results.csv")
    assert sorted(zip(df["method"], df["implementation"])) == [
        ("tinyup", "ours"), ("tinyup~upstream", f"upstream@{commit[:12]}")]
    assert "tinyup (upstream)" in (work / "results/tables/synthetic.md").read_text()
    fid = pd.read_csv(work / "results/tables/fidelity.csv")
    assert list(fid["method"]) == ["tinyup"] and fid.at[0, "gaussians_upstream"] == 200
    src = next((work / ".data/upstream").glob("*@*/src"))
    assert src.joinpath("train.py").read_text().splitlines()[0] == "# build fix applied"


def test_upstream_export_refuses_a_method_without_recipe(tmp_path, capsys):
    from gs.cli import main

    assert main(["upstream-export", str(tmp_path / "src"), "nosuch"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'nosuch' has no upstream recipe" in err and not (tmp_path / "src").exists()


def test_upstream_export_takes_the_tools_a_recipe_builds(tmp_path, monkeypatch):
    cloned = []
    monkeypatch.setattr(runner, "clone", lambda repo, commit, dest, **k: (cloned.append(repo), dest.mkdir()))
    runner.export_sources(tmp_path, {"hgsc": ("https://example.org/a/hgsc", "b" * 40)}, RECIPES)
    assert cloned == ["https://example.org/a/hgsc", "https://github.com/MPEGGroup/mpeg-pcc-tmc13"]
    assert (tmp_path / "MPEGGroup+mpeg-pcc-tmc13@a3d15c5e73bae20fbe2ec79be60994038a66dc8d").is_dir()


# ------------------------------------------------------------------------------ codecs: NSVQ-GS
FAKE_NSVQ_TRAIN = '''\
"""A stand-in for NSVQ-GS's train_newvq.py: writes its bitstream (a zip around a PLY)."""
import json, sys, zipfile
from pathlib import Path

argv = sys.argv[1:]
out, n = Path(argv[argv.index("-m") + 1]), argv[argv.index("--total_iterations") + 1]
(out / "point_cloud" / f"iteration_{n}").mkdir(parents=True)
with zipfile.ZipFile(out / "point_cloud" / f"iteration_{n}" / "compressed_model.zip", "w") as z:
    z.write(Path(__file__).with_name("model.ply"), "point_cloud.ply")
(out / "argv.json").write_text(json.dumps(argv))
'''

FAKE_NSVQ_MODEL = '''\
"""A stand-in for the authors' GaussianModel: load_ply unzips in place and deletes what it
unzipped, as theirs does; save_ply writes point_cloud.ply into a folder."""
import os, shutil, zipfile


class GaussianModel:
    def __init__(self, sh_degree, optimizer_type="default", module_vq=None):
        self.ply = None

    def load_ply(self, path, load_quant=False):
        assert load_quant
        zipfile.ZipFile(os.path.join(path, "compressed_model.zip")).extractall(path)
        with open(os.path.join(path, "point_cloud.ply"), "rb") as f:
            self.ply = f.read()
        os.remove(os.path.join(path, "point_cloud.ply"))

    def save_ply(self, path):
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "point_cloud.ply"), "wb") as f:
            f.write(self.ply)
'''


def fake_nsvq_checkout(src: Path) -> None:
    from gs.model import GaussianModel

    (src / "scene").mkdir(parents=True)
    rng = np.random.default_rng(0)
    GaussianModel.from_points(rng.uniform(-1, 1, (40, 3)), rng.uniform(0, 1, (40, 3))).save_ply(src / "model.ply")
    (src / "train_newvq.py").write_text(FAKE_NSVQ_TRAIN)
    (src / "scene" / "__init__.py").write_text("")
    (src / "scene" / "gaussian_model.py").write_text(FAKE_NSVQ_MODEL)


def test_nsvq_upstream_trains_45k_then_decodes_its_bitstream_with_the_authors_decoder(tmp_path, monkeypatch):
    import dataclasses

    from gs.model import GaussianModel

    src = tmp_path / "src"
    fake_nsvq_checkout(src)
    monkeypatch.setattr(runner, "prepare_upstream", lambda *a, **k: (src, None))
    (tmp_path / "scene" / "sparse" / "0").mkdir(parents=True)
    recipe = dataclasses.replace(RECIPES["nsvqgs"], needs_cuda=False)
    run = tmp_path / "run"
    k256 = {"k_scale": 256, "k_rotation": 256, "k_dc": 64, "k_sh": 64}
    stats = runner.run_upstream(recipe, "file:///nowhere", "a" * 40, tmp_path / "scene", {"images": "images_4"},
                                30000, k256, run / "point_cloud.ply", run / "train_stats.json", tmp_path / "cache")
    argv = json.loads((run / "upstream_output" / "argv.json").read_text())
    assert argv[argv.index("--total_iterations") + 1] == "45000" and stats["iterations"] == 45000
    for flag, value in [("--vq_ncls", "256"), ("--vq_ncls_dc", "64"), ("--vq_ncls_sh", "64"),
                        ("--vq_start_iter", "20000"), ("--max_prune_iter", "20000"), ("--lambda_reg", "1e-07")]:
        assert argv[argv.index(flag) + 1] == value, flag
    assert {"--opacity_reg", "--fine_tune"} <= set(argv) and "--disable_viewer" not in argv
    bitstream = run / "upstream_output/point_cloud/iteration_45000/compressed_model.zip"
    assert bitstream.is_file()  # decoded from a copy: the bitstream stays
    assert stats["size_bytes"] == stats["size_bytes_paper_format"] == bitstream.stat().st_size
    assert stats["decode_seconds"] >= 0 and stats["encode_seconds"] is None and stats["encode_seconds_reason"]
    assert GaussianModel.load_ply(run / "point_cloud.ply").num_gaussians == 40 == stats["num_gaussians"]


def test_nsvq_upstream_runs_only_what_its_code_can(tmp_path):
    recipe = RECIPES["nsvqgs"]
    assert recipe.supports({"k_scale": 4096, "k_rotation": 4096}) and not recipe.supports({"k_scale": 4096,
                                                                                           "k_rotation": 1024})
    assert not recipe.supports({"fresh_dead_codes": True})
    with pytest.raises(runner.UpstreamError, match="iterations: 30000, not 7000"):
        runner.train_command(recipe, tmp_path, tmp_path / "out", 7000, {}, {})


# ------------------------------------------------------------------------------ codecs: HGSC
FAKE_HGSC_TRAIN = '''\
"""A stand-in for HGSC's train.py: calls the TMC13 it is given, writes its streams in the working
directory, output.txt and rec.ply (every other Gaussian) beside the input, prints its sizes."""
import argparse, json, os, subprocess, sys
import numpy as np
from plyfile import PlyData

p = argparse.ArgumentParser()
p.add_argument("--model"); p.add_argument("--camera_json"); p.add_argument("--gpcc_path")
p.add_argument("--xyz_qp", type=int); p.add_argument("--max_points_per_block", type=int)
p.add_argument("--percentage", type=int); p.add_argument("--lod_bit_depth", type=int, nargs="+")
a = p.parse_args()
assert os.path.isabs(a.model) and a.model.endswith("/point_cloud.ply")
assert subprocess.run([a.gpcc_path], capture_output=True, text=True).stdout.strip() == "tmc3 here"
cams = json.load(open(a.camera_json))
name = a.model.split("/")[-2]
os.makedirs(os.path.join("output", name), exist_ok=True)
open(os.path.join("output", name, "quant.bin"), "wb").write(b"g" * 100)
os.makedirs("exp", exist_ok=True)  # one TMC13 stream per attribute column: positions + reflectance
for col, size in enumerate((80, 70)):
    open(os.path.join("exp", f"{col}.bin"), "wb").write(b"a" * size)
print("Reflectances bitstream size: 50 [03/12 10:00:00]")
out = os.path.dirname(a.model)
open(os.path.join(out, "output.txt"), "w").write("size_all: 290\\nencoding_time_all: 1.5\\ndecoding_time_all: 0.25\\n")
ply = PlyData.read(a.model)
ply.elements[0].data = np.ascontiguousarray(ply.elements[0].data[::2])
ply.write(os.path.join(out, "rec.ply"))
json.dump({"argv": sys.argv[1:], "cameras": cams}, open(os.path.join(out, "seen.json"), "w"))
'''


def git_repo(path: Path, files: dict[str, str]) -> str:
    """A local git repository of ``path`` (its files and ``files``); returns its commit."""
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    subprocess.run([*GIT, "init", "-q", str(path)], check=True)
    subprocess.run([*GIT, "-C", str(path), "add", "."], check=True)
    subprocess.run([*GIT, "-C", str(path), "commit", "-qm", "fake"], check=True)
    return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_hgsc_upstream_compresses_our_model_with_a_tmc13_built_from_source(tmp_path):
    import dataclasses

    from gs.camera import Camera
    from gs.model import GaussianModel
    from gs.upstream.recipes import Tool

    tool_commit = git_repo(tmp_path / "fake-tmc", {"tmc3.sh": "#!/bin/sh\necho tmc3 here\n"})
    tool = Tool("faketmc", f"file://{tmp_path}/fake-tmc", tool_commit,
                build=(("sh", "-c", "mkdir -p {build}/tmc3 && cp {src}/tmc3.sh {build}/tmc3/tmc3"),),
                binary="tmc3/tmc3", install=("comodules/tmc/linux/tmc3",))
    commit = git_repo(tmp_path / "fake-hgsc", {"train.py": FAKE_HGSC_TRAIN})
    recipe = dataclasses.replace(RECIPES["hgsc"], needs_cuda=False, extensions=(), fixes=(), tools=(tool,))
    rng = np.random.default_rng(0)
    model_in = tmp_path / "3dgs" / "point_cloud.ply"
    model_in.parent.mkdir()
    GaussianModel.from_points(rng.uniform(-1, 1, (60, 3)), rng.uniform(0, 1, (60, 3))).save_ply(model_in)
    view = torch_eye_viewmat(np.array([0.5, -1.0, 2.0]))
    cameras = [Camera(view, 100.0, 110.0, 20.0, 15.0, 40, 30, name="IMG_1.JPG")] * 2
    run = tmp_path / "hgsc~upstream@3dgs" / "p0_b10@default"
    p0_b10 = {"prune_percent": 0.0, "lod_bits": 10, "lod_bits_uv": 6}
    stats = runner.run_upstream_codec(recipe, f"file://{tmp_path}/fake-hgsc", commit, model_in, cameras, p0_b10,
                                      run / "point_cloud.ply", run / "codec_stats.json", tmp_path / "cache")
    assert stats["size_bytes"] == 100 + 50 + 30 == stats["size_bytes_paper_format"]  # LoD: (290 - 50) / 8
    assert stats["components"] == {"geometry_gpcc": 100, "anchor_attributes_raht": 50, "lod_residuals_zlib": 30}
    assert stats["anchor_attribute_files_bytes"] == 150  # as written, with the positions each stream repeats
    assert stats["encode_seconds"] == 1.5 and stats["decode_seconds"] == 0.25 and stats["num_gaussians"] == 30
    assert stats["implementation"] == f"upstream@{commit[:12]}"
    assert json.loads((run / "codec_stats.json").read_text())["size_bytes"] == 180
    assert GaussianModel.load_ply(run / "point_cloud.ply").num_gaussians == 30
    seen = json.loads((run / "upstream_output/stage/model/seen.json").read_text())
    argv = seen["argv"]
    assert argv[argv.index("--percentage") + 1] == "0" and argv[argv.index("--lod_bit_depth") + 1:][:2] == ["6", "10"]
    cam = seen["cameras"][0]
    assert len(seen["cameras"]) == 2 and cam["img_name"] == "IMG_1" and (cam["fx"], cam["width"]) == (100.0, 40)
    assert np.allclose(cam["position"], [-0.5, 1.0, -2.0])  # the centre of a camera at viewmat [I | t]
    assert model_in.is_file()  # the input stays where it was
    # the checkout holds the built program where the authors' code calls it
    src = next((tmp_path / "cache").glob("*+fake-hgsc@*/src"))
    assert (src / "comodules/tmc/linux/tmc3").read_text().endswith("echo tmc3 here\n")


def torch_eye_viewmat(t):
    import torch

    v = torch.eye(4)
    v[:3, 3] = torch.tensor(t, dtype=torch.float32)
    return v


def test_a_failed_upstream_command_reports_its_exception_not_the_progress_bar_after_it():
    script = ("import sys, tqdm\nbar = tqdm.tqdm(total=10, file=sys.stdout)\nbar.update(1)\n"
              "try:\n    raise TypeError('numpy.bool cannot be interpreted as an integer')\nfinally:\n    bar.close()\n")
    with pytest.raises(runner.UpstreamError) as e:
        runner._run([sys.executable, "-c", script], "x~upstream: train.py failed")
    assert str(e.value) == "x~upstream: train.py failed (exit 1): TypeError: numpy.bool cannot be interpreted as an integer"


def test_the_authors_training_seconds_are_their_loop_not_their_whole_script():
    bar = "\n".join(["Training progress:  50%|#####     | 15000/30000 [07:30<07:30, 33.3it/s]",
                     "Training progress: 100%|##########| 30000/30000 [15:13<00:00, 32.84it/s, Loss=0.0143]",
                     "[ITER 30000] Evaluating test: L1 0.02 PSNR 26.3"])
    t = runner._train_seconds(bar, 930.5)
    assert t["train_seconds"] == 913.0 and t["script_seconds"] == 930.5 and "'Training progress' bar" in t["train_seconds_note"]
    hours = runner._train_seconds("Training progress: 100%|#| 45000/45000 [1:02:03<00:00, 12.1it/s]", 4000.0)
    assert hours["train_seconds"] == 3723.0
    none = runner._train_seconds("Training progress:  99%|#| 29999/30000 [15:13<00:01]", 931.0)
    assert none["train_seconds"] == 931.0 and "whole training script" in none["train_seconds_note"]
