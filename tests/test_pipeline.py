"""The Snakemake pipeline: config validation, target lists, lint, DAGs, one real run."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from e2e_helpers import REPO, TINY_CONFIG, snakemake, tiny_run
from gs import pipeline
from gs.report.tables import read_survey_csv


# ------------------------------------------------------------------------------ a fake registry
@dataclass
class FakeSpec:
    kind: str
    variants: dict = field(default_factory=lambda: {"default": {}})
    default_variant: str = "default"
    codec: str | None = None
    presets: dict = field(default_factory=dict)
    baseline_inputs: dict = field(default_factory=dict)
    init_from_baseline_at: int | None = None

    def params_for(self, variant, dataset=None, scene=None, overrides=None):
        out = {}
        if dataset in self.presets:
            out.update(self.presets[dataset])
        out.update(self.variants[variant])
        out.update(overrides or {})
        return out


REG = {
    "base": FakeSpec("train"),
    "prune": FakeSpec("train", variants={f"{p}pct": {"frac": p} for p in (5, 10, 20, 40)}, default_variant="10pct",
                      baseline_inputs={"baseline_count": "num_gaussians"}, presets={"ds": {"x": 1}}),
    "vq": FakeSpec("train", codec="m:C"),
    "zip": FakeSpec("codec", variants={"q8": {}, "q16": {}}, default_variant="q8", codec="m:Z"),
}


def _config(**over):
    cfg = {
        "results_dir": "res", "data_dir": "dat",
        "datasets": {
            "ds": {"source": "synthetic", "scenes": {"a": None, "b": {"generate": {"seed": 3}}},
                   "generate": {"seed": 0, "width": 32}},
            "dl": {"source": "download", "url": "https://example.org/x/pack.zip", "subdir": "tt",
                   "scenes": ["s1"]},
            "dl2": {"source": "download", "url": "https://example.org/x/pack.zip", "subdir": "db",
                    "scenes": ["s2"], "images": "images_2"},
            "loc": {"source": "local", "root": "/data/llff", "scenes": {"fern": {"images": "images_4"}}},
        },
        "methods": {"base": {"variants": "default"}, "prune": {"variants": 2}, "vq": None,
                    "zip": {"variants": "all", "bases": ["base", "prune/40pct"]}},
    }
    cfg.update(over)
    return cfg


def test_runs_cover_methods_variants_and_codec_bases():
    runs = pipeline.runs(_config(), REG)
    ids = {(r.dataset, r.scene, r.method, r.variant) for r in runs}
    assert len(runs) == len(ids) == 5 * (1 + 2 + 1 + 4)  # 5 scenes x (base, 2 prune, vq, 2 codecs x 2 bases)
    assert ("ds", "a", "prune", "5pct") in ids and ("ds", "a", "prune", "40pct") in ids  # evenly spread
    assert ("loc", "fern", "zip@base", "q16@default") in ids
    assert ("dl", "s1", "zip@prune", "q8@40pct") in ids
    assert pipeline.split_run("zip@prune", "q8@40pct") == ("zip", "q8", "prune", "40pct")
    targets = pipeline.metrics_targets(_config(), REG)
    assert "res/ds/a/zip@prune/q8@40pct/metrics.json" in targets


def test_methods_all_and_unknown_names():
    runs = pipeline.runs(_config(methods="all"), REG)
    assert {r.method for r in runs} == {"base", "prune", "vq", "zip@base"}
    assert {r.variant for r in runs if r.method == "prune"} == {"10pct"}  # default variant
    runs = pipeline.runs(_config(methods="all", default_variants=2), REG)
    assert {r.variant for r in runs if r.method == "prune"} == {"5pct", "40pct"}
    with pytest.raises(pipeline.ConfigError, match="nope"):
        pipeline.runs(_config(methods={"nope": None}), REG)
    with pytest.raises(pipeline.ConfigError, match="prune.*'1pct'"):
        pipeline.runs(_config(methods={"prune": {"variants": ["1pct"]}}), REG)
    with pytest.raises(pipeline.ConfigError, match="not a training method"):
        pipeline.runs(_config(methods={"zip": {"bases": ["zip"]}}), REG)


def test_scene_locations_and_shared_download():
    cfg = _config()
    assert pipeline.scene_location(cfg, "ds", "a") == ("dat/generated/ds/a", "dat/generated/ds/a")
    assert pipeline.scene_location(cfg, "dl", "s1") == ("dat/extracted/pack/tt/s1", "dat/extracted/pack")
    assert pipeline.scene_location(cfg, "loc", "fern") == ("/data/llff/fern", None)
    assert list(pipeline.downloads(cfg)) == ["pack.zip"]  # two datasets, one archive
    assert pipeline.generate_params(cfg, "ds", "b") == {"seed": 3, "width": 32}
    assert pipeline.scene_protocol(cfg, "dl2", "s2")["images"] == "images_2"
    assert pipeline.scene_protocol(cfg, "loc", "fern")["images"] == "images_4"
    assert pipeline.scene_protocol(cfg, "ds", "a")["test_every"] == 8


def test_only_scenes_narrows_every_dataset_and_names_a_scene_it_lacks():
    cfg = _config()
    assert pipeline.all_scenes({**cfg, "only_scenes": ["a", "fern"]}) == [("ds", "a"), ("loc", "fern")]
    assert {s for _, s in pipeline.all_scenes(cfg)} > {"a", "fern"}
    pipeline.check_scene_selection({**cfg, "only_scenes": ["fern"]})
    with pytest.raises(pipeline.ConfigError, match=r"only_scenes: \['ferm'\] not among the configured scenes"):
        pipeline.check_scene_selection({**cfg, "only_scenes": ["ferm"]})
    with pytest.raises(pipeline.ConfigError, match="selects nothing"):
        pipeline.check_scene_selection({**cfg, "only_scenes": []})


def test_params_and_baseline_inputs():
    cfg = _config(methods={"prune": {"params": {"y": 2}}})
    assert pipeline.method_params(cfg, "prune", "5pct", "ds", "a", REG) == {"x": 1, "frac": 5, "y": 2}
    assert pipeline.baseline_method(REG) == ("base", "default")
    assert pipeline.baseline_inputs("prune", REG) == {"baseline_count": "num_gaussians"}
    assert pipeline.baseline_inputs("base", REG) == {}


def test_prefix_is_shared_only_for_the_same_computation():
    reg = dict(REG, vq=FakeSpec("train", codec="m:C", init_from_baseline_at=15_000))
    cfg = _config(iterations=300)
    assert pipeline.prefix_iteration(cfg, "vq", "ds", "a", reg) == 150  # 15k of 30k, scaled
    assert pipeline.prefix_iteration(cfg, "prune", "ds", "a", reg) is None
    assert pipeline.prefix_iteration(cfg, "base", "ds", "a", reg) is None
    assert pipeline.prefix_iterations(cfg, reg) == [150]
    assert pipeline.prefix_iteration(_config(iterations=1), "vq", "ds", "a", reg) is None  # no prefix to share
    # a baseline with other settings, or a method that changes densification: no shared prefix
    other_base = _config(iterations=300, methods={"base": {"params": {"grad_threshold": 1e-4}}, "vq": None})
    assert pipeline.prefix_iteration(other_base, "vq", "ds", "a", reg) is None
    own_densify = _config(iterations=300, methods={"base": None, "vq": {"params": {"densify_until": 9000}}})
    assert pipeline.prefix_iteration(own_densify, "vq", "ds", "a", reg) is None
    assert pipeline.prefix_iterations(own_densify, reg) == []


def test_wildcard_constraints_are_unambiguous():
    wc = {k: re.compile(v + r"\Z") for k, v in pipeline.wildcard_constraints(_config(), REG).items()}
    assert wc["run"].match("zip@prune") and wc["run"].match("base")
    assert not wc["run"].match("zip") and not wc["run"].match("base@zip") and not wc["run"].match("a/b")
    assert wc["method"].match("prune") and not wc["method"].match("zip")
    assert wc["rvariant"].match("q8@40pct") and not wc["rvariant"].match("a/b")
    assert not wc["variant"].match("q8@40pct") and not wc["scene"].match("a/b")
    assert wc["archive"].match("pack.zip") and wc["stem"].match("pack")
    assert wc["trained_codec"].match("vq") and not wc["trained_codec"].match("base")


def test_seeds_are_dag_branches():
    one = pipeline.runs(_config(), REG)
    cfg = _config(seeds=[0, 1, 2])
    runs = pipeline.runs(cfg, REG)
    assert len(runs) == 3 * len(one) and len(set(runs)) == len(runs)
    assert [r for r in runs if r.seed is None] == one  # the config's seed keeps today's runs and paths
    targets = pipeline.metrics_targets(cfg, REG)
    assert set(pipeline.metrics_targets(_config(), REG)) < set(targets)
    assert "res/ds/a/prune/40pct~seed1/metrics.json" in targets
    assert "res/ds/a/zip@prune/q8@40pct~seed2/metrics.json" in targets  # a codec follows its base's seed
    assert "res/ds/a/vq/default~seed2/metrics.json" in targets
    r = pipeline.Run.from_dir("ds", "a", "zip@prune", "q8@40pct~seed2")
    assert (r.variant, r.seed) == ("q8@40pct", 2) and r.dir("res") == "res/ds/a/zip@prune/q8@40pct~seed2"
    assert r.base_run() == pipeline.Run("ds", "a", "prune", "40pct", 2)
    assert pipeline.Run.from_dir("ds", "a", "base", "default").seed is None
    assert pipeline.split_seed("decomp_0.1~seed12") == ("decomp_0.1", 12)
    assert pipeline.run_seed(cfg, "q8@40pct~seed2") == 2 and pipeline.run_seed({"seed": 5}, "q8@40pct") == 5
    assert pipeline.primary_seed(cfg) == 0
    # seeds without the config's seed: every run is suffixed, the strips show the first seed
    other = _config(seeds=[3, 4])
    assert all(r.seed in (3, 4) for r in pipeline.runs(other, REG)) and pipeline.primary_seed(other) == 3
    with pytest.raises(pipeline.ConfigError, match="twice"):
        pipeline.runs(_config(seeds=[1, 1]), REG)
    # every seeded folder matches its rule's wildcards, and only one way
    wc = {k: re.compile(v + r"\Z") for k, v in pipeline.wildcard_constraints(cfg, REG).items()}
    assert wc["variant"].match("40pct~seed1") and wc["bvariant"].match("40pct~seed1")
    assert wc["rvariant"].match("q8@40pct~seed2") and wc["rvariant"].match("40pct~seed2")
    assert not wc["cvariant"].match("q8~seed1") and not wc["variant"].match("40pct~seed")
    assert not wc["variant"].match("40pct~seed1~seed2")


def test_a_method_can_have_its_own_seeds():
    cfg = _config()
    cfg["methods"]["base"]["seeds"] = [0, 1]  # a second baseline seed for the spread, nothing else twice
    runs = pipeline.runs(cfg, REG)
    assert {r.method for r in runs if r.seed == 1} == {"base"}
    assert len(runs) == len(pipeline.runs(_config(), REG)) + len(pipeline.all_scenes(cfg))


def test_seeds_dry_run(tmp_path):
    """Two seeds build a DAG with every training job twice, the second seed's GNS reading the
    second seed's baseline."""
    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    cfg["seeds"] = [0, 1]
    p = tmp_path / "seeds.yaml"
    p.write_text(yaml.safe_dump(cfg))
    run = snakemake("-n", "--configfile", str(p), cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    runs = pipeline.runs(cfg)
    trains = [r for r in runs if not r.is_codec_over_base]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", out, flags=re.M))
    bases = [r for r in trains if r.method == pipeline.baseline_method()[0]]
    assert counts.get("train_baseline") == str(len(bases)) == "2"
    assert counts.get("train") == str(len(trains) - len(bases)) and counts.get("evaluate") == str(len(runs))
    assert counts.get("bd_tables") == "1" and counts.get("bd_summary") == "1"
    assert ("input: results/synthetic/tiny/scene.json, results/synthetic/tiny/3dgs/default~seed1/train_stats.json\n"
            "    output: results/synthetic/tiny/gns/15pct~seed1/point_cloud.ply") in out
    assert ("input: results/synthetic/tiny/3dgs/default~seed1/point_cloud.ply, results/synthetic/tiny/scene.json\n"
            "    output: results/synthetic/tiny/hgsc@3dgs/default@default~seed1/point_cloud.ply") in out
    assert not (tmp_path / "results").exists()


def test_report_targets():
    t = pipeline.report_targets(_config())
    assert "res/tables/results.csv" in t["results"]
    assert {"res/tables/ds_survey.csv", "res/tables/ds.md", "res/tables/ds.tex"} <= set(t["tables"])
    assert {"res/plots/ds_rd.png", "res/plots/ds_rd.svg"} <= set(t["plots"])
    assert "res/strips/loc/fern.png" in t["strips"]
    assert {"res/tables/ds_bd.csv", "res/tables/ds_bd.html", "res/tables/bd_summary.html"} <= set(t["bd"])


def test_strip_runs_baseline_first():
    runs = [("zip@base", "q8@default", "p4"), ("prune", "5pct", "p2"), ("prune", "10pct", "p3"), ("base", "default", "p1")]
    got = pipeline.strip_runs(runs, REG)
    assert got == [("base default", "p1"), ("prune 10pct", "p3"), ("zip@base q8@default", "p4")]


def test_archive_file_names_and_errors():
    assert pipeline.archive_file({"url": "https://example.org/a/tandt%20db.zip?x=1"}) == "tandt db.zip"
    assert pipeline.archive_file({"url": "gdrive:pack.zip"}) == "pack.zip"
    assert pipeline.archive_stem("Pack.TAR.GZ") == "Pack"
    with pytest.raises(pipeline.ConfigError, match="archive:"):
        pipeline.archive_file({"url": "https://example.org/"})


# ------------------------------------------------------------------------------ snakemake itself
def test_config_typo_is_caught_before_any_job(tmp_path):
    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    cfg["iteratons"] = cfg.pop("iterations")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    run = snakemake("--cores", "1", "--configfile", str(bad), cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "iteratons" in out and "Additional properties" in out
    assert not (tmp_path / "results").exists() and not (tmp_path / ".data").exists()


def test_nested_config_typo_names_the_key(tmp_path):
    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    cfg["datasets"]["synthetic"]["scenez"] = cfg["datasets"]["synthetic"].pop("scenes")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    run = snakemake("-n", "--configfile", str(bad), cwd=tmp_path)
    assert run.returncode != 0 and "scenez" in run.stdout + run.stderr
    assert not (tmp_path / "results").exists()


def test_unknown_method_is_caught(tmp_path):
    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    cfg["methods"] = {"3dgs": None, "no_such_method": None}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    run = snakemake("-n", "--configfile", str(bad), cwd=tmp_path)
    assert run.returncode != 0 and "no_such_method" in run.stdout + run.stderr


def test_lint_is_clean():
    run = snakemake("--lint")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "Lints for" not in out, out


def test_paper_presets_build_a_dag():
    presets = [str(REPO / "config" / f"{n}.yaml") for n in ("mipnerf360", "tandt", "deepblending")]
    run = snakemake("-n", "--quiet", "rules", "--configfile", *presets)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", out, flags=re.M))
    # 360_v2.zip + 360_extra_scenes.zip, and tandt_db.zip shared by tandt and deepblending
    assert counts.get("prepare_scene") == "13" and counts.get("download") == "3", out
    n_runs = len(pipeline.runs(_merged(presets)))
    assert counts.get("evaluate") == str(n_runs)


def _merged(paths):
    cfg = {"datasets": {}, "methods": "all"}
    for p in paths:
        c = yaml.safe_load(Path(p).read_text())
        cfg["datasets"].update(c["datasets"])
    return cfg


def test_local_preset_schema(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "local.yaml").read_text())
    scene = tmp_path / "scenes" / "fern"
    scene.mkdir(parents=True)
    cfg["datasets"]["llff"]["root"] = str(tmp_path / "scenes")
    p = tmp_path / "local.yaml"
    p.write_text(yaml.safe_dump(cfg))
    run = snakemake("-n", "--quiet", "rules", "--configfile", str(p), cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "prepare_scene" in run.stdout + run.stderr


def test_each_preset_validates():
    for p in sorted((REPO / "config").glob("*.yaml")):
        if p.name.startswith("local"):  # read a folder on the user's disk: tests/test_local_presets.py
            continue
        run = snakemake("-n", "--quiet", "rules", "--configfile", str(p))
        assert run.returncode == 0, f"{p.name}: {run.stdout[-2000:]}{run.stderr[-3000:]}"


# ------------------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_tiny_end_to_end():
    work = tiny_run()
    res = work / "results"
    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    expected = {(r.method, r.variant) for r in pipeline.runs(cfg)}
    with open(res / "tables" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["method"], r["variant"]) for r in rows} == expected
    for col in ("dataset", "scene", "method", "variant", "psnr", "ssim", "lpips", "size_bytes", "num_gaussians",
                "train_seconds", "fps"):
        assert col in rows[0], col
    assert all(float(r["psnr"]) > 5 for r in rows)
    survey = (res / "tables" / "synthetic_survey.csv").read_text().splitlines()[0]
    assert survey == "Submethod,PSNR,SSIM,LPIPS,Size [Bytes],#Gaussians"
    back = read_survey_csv(res / "tables" / "synthetic_survey.csv")  # the survey's units: bytes, counts
    assert len(back) == len(expected) and back["Size [Bytes]"].notna().all() and (back["#Gaussians"] > 0).all()
    with open(res / "tables" / "synthetic_bd.csv") as f:
        assert {r["method"] for r in csv.DictReader(f)} == {m for m, _ in expected}
    for p in ("tables/synthetic.md", "tables/synthetic.tex", "tables/synthetic.html", "tables/results.html",
              "tables/synthetic_bd.html", "tables/bd_summary.html",
              "plots/synthetic_rd.png", "plots/synthetic_rd.svg", "strips/synthetic/tiny.png", "provenance.json"):
        assert (res / p).stat().st_size > 0, p
    prov = json.loads((res / "provenance.json").read_text())
    assert prov["protocol"]["iterations"] == cfg["iterations"] and prov["versions"]
    # every run has its renders and a self-describing metrics JSON
    for r in pipeline.runs(cfg):
        m = json.loads((work / r.dir("results") / "metrics.json").read_text())
        assert m["method"] == r.method and m["variant"] == r.variant and m["size_bytes"] > 0
        assert any((work / r.dir("results") / "renders").iterdir())
    # codecs are sized by their bitstream, not by the decoded PLY
    for r in pipeline.runs(cfg):
        if r.is_codec_over_base:
            stats = json.loads((work / r.dir("results") / "codec_stats.json").read_text())
            m = json.loads((work / r.dir("results") / "metrics.json").read_text())
            assert m["size_bytes"] == stats["size_bytes"]
    assert (work / "report.html").stat().st_size > 10_000
    # NSVQ-GS starts from the baseline's saved state (a DAG edge), and the report says so
    prefix = pipeline.prefix_iteration(cfg, "nsvqgs", "synthetic", "tiny")
    nsvq = [r for r in pipeline.runs(cfg) if r.method == "nsvqgs"][0]
    stats = json.loads((work / nsvq.dir("results") / "train_stats.json").read_text())
    assert prefix and (work / "results/synthetic/tiny/3dgs/default" / f"prefix_{prefix}.pt").exists()
    assert stats["starts_from"] == {"iteration": prefix, "run": "3dgs/default"}
    assert stats["resumed_from"].endswith(f"prefix_{prefix}.pt")
    assert [r["starts_from"] for r in prov["runs"] if r["method"] == "nsvqgs"] == [stats["starts_from"]]
    # nothing left to do: a second run is a no-op
    again = snakemake("-n", "--configfile", str(TINY_CONFIG), cwd=work)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_checkpoints_survive_only_for_the_same_run(tmp_path):
    from gs.train.checkpoint import checkpoint_fingerprint, guard_checkpoints

    fp = checkpoint_fingerprint("m", {"a": 1, "b": 2}, "scene")
    assert fp == checkpoint_fingerprint("m", {"b": 2, "a": 1}, "scene")  # key order does not matter
    assert guard_checkpoints(tmp_path, fp) is False
    (tmp_path / "checkpoints" / "ckpt_10.pt").write_bytes(b"x")
    assert guard_checkpoints(tmp_path, fp) is True  # killed job, same inputs: resume
    assert (tmp_path / "checkpoints" / "ckpt_10.pt").exists()
    other = checkpoint_fingerprint("m", {"a": 2, "b": 2}, "scene")
    assert guard_checkpoints(tmp_path, other) is False  # params changed: start over
    assert not (tmp_path / "checkpoints" / "ckpt_10.pt").exists()


def test_pipeline_is_config_to_targets_only():
    """The DAG code holds no report writer and no checkpoint logic."""
    assert not hasattr(pipeline, "markdown_to_html") and not hasattr(pipeline, "run_fingerprint")
