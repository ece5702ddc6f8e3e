"""The method registry: specs declared by the method files, typed and checked parameters,
deviations from the authors' code as data."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import yaml

from e2e_helpers import REPO, TINY_CONFIG, snakemake
from gs import pipeline
from gs.cli import _parse_sets
from gs.methods.registry import (
    DEVIATIONS_DIR, METHODS, MethodSpec, Param, ParamError, get_method, load_fidelity, param_schema, parse_scalar,
)


# ------------------------------------------------------------------------------ discovery
def test_every_method_file_declares_its_spec_in_registry_order():
    assert list(METHODS)[:6] == ["3dgs", "gns", "argp", "edim", "nsvqgs", "hgsc"]  # 3dgs: the baseline
    sources = METHODS.sources()
    for mid in ("3dgs", "gns", "argp", "edim", "nsvqgs", "hgsc"):
        module = sys.modules[sources[mid]]
        assert module.SPEC is METHODS[mid]  # the spec lives in the method's own file
    assert pipeline.baseline_method() == ("3dgs", "default")


def test_importing_the_registry_imports_no_method():
    methods = ("baseline", "gns", "argp", "edim", "nsvqgs", "hgsc")
    code = ("import sys, gs.methods.registry as r; "
            f"assert not [m for m in {methods} if 'gs.methods.' + m in sys.modules]; "
            "assert 'torch' not in sys.modules; print(len(r.METHODS))")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) >= 6


def test_each_spec_builds_its_strategy_and_codec_with_its_params():
    for mid, spec in METHODS.items():
        params = spec.params_for(spec.default_variant)
        params.update({k: 1000 for k in spec.baseline_inputs})
        assert set(params) <= set(spec.params), mid
        if spec.kind == "train":
            spec.make_strategy(params)
        if spec.codec:
            spec.load("codec")(**params)


# ------------------------------------------------------------------------------ parameters
def test_set_values_are_yaml_1_2_scalars():
    assert _parse_sets(["a=1e-4", "b=true", "c=5", "d=[3300, 6300]", "e=train", "f=null", "g=-2.5E3"]) == {
        "a": 1e-4, "b": True, "c": 5, "d": [3300, 6300], "e": "train", "f": None, "g": -2500.0}
    assert isinstance(_parse_sets(["a=1e-4"])["a"], float)
    assert math.isnan(parse_scalar(".nan")) and parse_scalar("inf") == math.inf


def test_params_are_typed_coerced_and_checked():
    gns = get_method("gns")
    assert gns.params_for("15pct", overrides={"opacity_lr": "1e-4"})["opacity_lr"] == 1e-4
    assert gns.params_for("15pct", overrides={"cams": 4.0})["cams"] == 4  # integral number -> int
    assert gns.params_for("15pct", overrides={"budget": None})["budget"] is None  # nullable
    assert gns.params_for("15pct", overrides={"budget": "null"})["budget"] is None
    assert gns.params_for("15pct", overrides={"quantile_prune_at": "[100, 200]"})["quantile_prune_at"] == [100, 200]
    bad = [({"opacity_lr": "abc"}, "expects a number"), ({"opacity_lr": math.nan}, "finite"),
           ({"opacity_lr": "inf"}, "finite"), ({"opacity_lr": 5.0}, "out of range"),
           ({"cams": 2.5}, "expects an integer"), ({"cams": True}, "expects an integer"),
           ({"quantile_prune_at": 3300}, "list of integers")]
    for override, why in bad:
        with pytest.raises(ParamError, match=why) as err:
            gns.params_for("15pct", overrides=override)
        name = next(iter(override))
        assert f"method 'gns'" in str(err.value) and name in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ParamError, match=r"unknown parameter 'opacty_lr' \(known: .*opacity_lr"):
        gns.params_for("15pct", overrides={"opacty_lr": 0.1})
    with pytest.raises(ParamError, match="expects one of"):
        get_method("argp").params_for("default", overrides={"score_background": "white"})
    with pytest.raises(ParamError, match="true or false"):
        get_method("argp").params_for("default", overrides={"freeze_gradients": "yes please"})


def test_a_spec_whose_own_values_break_its_schema_is_refused():
    schema = {"q": Param("float", 0, 1)}
    with pytest.raises(ValueError, match="variants.bad"):
        MethodSpec(id="x", kind="train", title="x", params=schema, variants={"default": {}, "bad": {"q": 2}})
    with pytest.raises(ValueError, match="default variant"):
        MethodSpec(id="x", kind="train", title="x", default_variant="nope")
    with pytest.raises(ValueError, match="default q=0.5 does not fit"):
        from dataclasses import dataclass

        @dataclass
        class Cfg:
            q: float = 0.5

        param_schema(Cfg, q=(0.6, 1))


def _cfg(methods):
    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    cfg["methods"] = methods
    return cfg


def test_config_params_are_checked_before_any_job():
    ok = _cfg({"3dgs": None, "gns": {"params": {"opacity_lr": "1e-4"}}})
    pipeline.runs(ok)
    assert pipeline.method_params(ok, "gns", "15pct", "synthetic", "tiny")["opacity_lr"] == 1e-4
    cases = [({"gns": {"params": {"opacity_lr": "abc"}}}, "opacity_lr='abc'"),
             ({"gns": {"params": {"opacity_lr": float("nan")}}}, "opacity_lr=nan"),
             ({"hgsc": {"params": {"prune_percnt": 10}}}, "unknown parameter 'prune_percnt' (known: "),
             ({}, "no method selected"),
             ({"3dgs": {"enabled": False}}, "no method selected")]
    for methods, msg in cases:
        with pytest.raises(pipeline.ConfigError) as err:
            pipeline.runs(_cfg(methods))
        assert msg in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_dry_run_fails_with_one_line_naming_method_param_and_value(tmp_path):
    for methods, line in [({"gns": {"params": {"opacity_lr": "1e-4x"}}},
                           "config error: method 'gns' params: opacity_lr='1e-4x' expects a number"),
                          ({}, "config error: methods: no method selected")]:
        p = tmp_path / "bad.yaml"
        p.write_text(yaml.safe_dump(_cfg(methods)))
        run = snakemake("-n", "--configfile", str(p), cwd=tmp_path)
        out = run.stdout + run.stderr
        assert run.returncode != 0 and line in out, out
        assert "Traceback" not in out and not (tmp_path / "results").exists()
    p.write_text(yaml.safe_dump(_cfg({"3dgs": None, "gns": {"params": {"opacity_lr": "1e-4"}}})))
    run = snakemake("-n", "--configfile", str(p), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


# ------------------------------------------------------------------------------ deviations
def test_deviation_files_load_and_name_a_pinned_upstream():
    assert {"nsvqgs", "hgsc"} <= {p.stem for p in DEVIATIONS_DIR.glob("*.yaml")}
    for path in DEVIATIONS_DIR.glob("*.yaml"):
        fid = load_fidelity(path)
        assert path.stem in METHODS, path
        assert fid.repository.startswith("https://github.com/") and fid.deviations
        assert get_method(path.stem).fidelity == fid
    hgsc = get_method("hgsc").fidelity
    assert hgsc.commit == "2d354c15ccdd234ac88e53e3f793ff513900413c"
    assert any("test views" in d.upstream for d in hgsc.deviations)  # the leak we keep, listed


def test_bad_deviation_files_get_one_error_naming_file_and_record(tmp_path):
    good = {"aspect": "a", "upstream": "f.py:1", "ours": "o", "why": "w", "effect": "unmeasured"}
    cases = [({"repository": "r", "deviations": []}, "missing keys ['commit']"),
             ({"repository": "r", "commit": "c", "deviations": [], "note": 1}, "unknown keys ['note']"),
             ({"repository": "r", "commit": "c", "deviations": [good, {**good, "effect": ""}]},
              "deviation 2 (a): ['effect'] must be non-empty"),
             ({"repository": "r", "commit": "c", "deviations": [{**good, "effct": "x"}]}, "deviation 1 (a): keys"),
             ([good], "expected a mapping")]
    for doc, msg in cases:
        p = tmp_path / "m.yaml"
        p.write_text(yaml.safe_dump(doc))
        with pytest.raises(ValueError) as err:
            load_fidelity(p)
        assert str(p) in str(err.value) and msg in str(err.value), str(err.value)


def test_methods_command_prints_params_and_deviations():
    run = subprocess.run([sys.executable, "-m", "gs", "methods", "--deviations", "--params"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "upstream: https://github.com/H-Huang774/HGSC @ 2d354c1" in run.stdout
    assert "views used for the significance scores" in run.stdout
    assert "param prune_percent: float in [0, 100]" in run.stdout


def test_cli_checks_set_values_before_loading_anything(tmp_path, capsys):
    from gs.cli import main

    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "no_scene"), str(out), "--method", "gns", "--set", "opacity_lr=abc"]) == 2
    err = capsys.readouterr().err
    assert err == "error: method 'gns' params: opacity_lr='abc' expects a number\n"
    assert main(["compress", "m.ply", str(out), "--codec", "hgsc", "--set", "lod_bits=99"]) == 2
    assert "lod_bits=99 out of range (expects int in [1, 16])" in capsys.readouterr().err
    assert not out.exists()


def test_diagnostic_variants_are_not_rate_points():
    """`variants: all` and `default_variants: N` draw the RD curve from rate points only; a
    fidelity switch (e.g. ARGP's true_freeze) runs only when named."""
    from gs import pipeline
    from gs.methods.registry import get_method

    spec = get_method("argp")
    assert "true_freeze" in spec.diagnostics
    assert "true_freeze" not in pipeline.select_variants("argp", spec, "all")
    assert "true_freeze" not in pipeline.select_variants("argp", spec, 5)
    assert pipeline.select_variants("argp", spec, ["true_freeze"]) == ["true_freeze"]
