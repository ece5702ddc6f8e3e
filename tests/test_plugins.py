"""A method shipped as its own package: an installed distribution with a ``gs_bench.methods``
entry point shows up in ``python -m gs methods``, in the registry and in the Snakemake DAG."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import yaml

from e2e_helpers import REPO, TINY_CONFIG, snakemake
from gs.methods.registry import METHODS

PLUGIN = '''
"""A tiny plug-in method: the baseline with another gradient threshold."""
from gs.methods.baseline import BaselineStrategy
from gs.methods.registry import MethodSpec, Param


class TinyStrategy(BaselineStrategy):
    pass


SPEC = MethodSpec(
    id="tinyplug", kind="train", title="Tiny plug-in method", strategy="gsb_tinyplug:TinyStrategy",
    params={"grad_threshold": Param("float", min=0)},
    variants={"default": {}, "strict": {"grad_threshold": 1e-3}},
)
'''


def install_plugin(site: Path, package: str = "gsb_tinyplug", source: str = PLUGIN,
                   entry: str = "tinyplug = gsb_tinyplug:SPEC") -> Path:
    """What ``pip install --target site`` leaves behind: the package and its dist-info with
    the entry point."""
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(textwrap.dedent(source))
    info = site / f"{package}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[gs_bench.methods]\n{entry}\n")
    (info / "RECORD").write_text("")
    return site


@pytest.fixture
def plugin_site(tmp_path, monkeypatch):
    site = install_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    METHODS.refresh()
    yield site
    monkeypatch.undo()
    sys.modules.pop("gsb_tinyplug", None)
    METHODS.refresh()


def test_plugin_is_a_registered_method(plugin_site):
    spec = METHODS["tinyplug"]
    assert list(METHODS)[0] == "3dgs" and list(METHODS)[-1] == "tinyplug"  # after the built-ins
    assert METHODS.sources()["tinyplug"] == "entry point tinyplug = gsb_tinyplug:SPEC"
    assert type(spec.make_strategy(spec.params_for("strict"))).__name__ == "TinyStrategy"
    with pytest.raises(ValueError, match="method 'tinyplug' params: unknown parameter 'densify_until'"):
        spec.params_for("default", overrides={"densify_until": 10})


def test_plugin_in_cli_listing(plugin_site):
    run = subprocess.run([sys.executable, "-m", "gs", "methods"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "tinyplug train  Tiny plug-in method" in run.stdout
    assert "from: entry point tinyplug = gsb_tinyplug:SPEC" in run.stdout


@pytest.mark.slow
def test_plugin_in_the_dag(plugin_site, tmp_path):
    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    cfg["methods"] = {"3dgs": None, "tinyplug": {"variants": "all"}, "hgsc": {"bases": ["tinyplug/strict"]}}
    p = tmp_path / "plugin.yaml"
    p.write_text(yaml.safe_dump(cfg))
    run = snakemake("-n", "--configfile", str(p), cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    for path in ("results/synthetic/tiny/tinyplug/default/point_cloud.ply",
                 "results/synthetic/tiny/tinyplug/strict/point_cloud.ply",
                 "results/synthetic/tiny/hgsc@tinyplug/default@strict/metrics.json"):
        assert path in out, path


def test_broken_or_clashing_plugins(tmp_path, monkeypatch):
    site = install_plugin(tmp_path / "site", "gsb_broken", "raise ImportError('needs a GPU library')",
                          "broken = gsb_broken:SPEC")
    install_plugin(site, "gsb_clash", PLUGIN.replace('"tinyplug"', '"gns"').replace("gsb_tinyplug", "gsb_clash"),
                   "gns = gsb_clash:SPEC")
    monkeypatch.syspath_prepend(str(site))
    METHODS.refresh()
    try:
        with warnings.catch_warnings(record=True) as caught, pytest.raises(ValueError) as err:
            warnings.simplefilter("always")
            list(METHODS)
        assert "method 'gns' is declared twice: by gs.methods.gns and by entry point gns = gsb_clash:SPEC" \
            in str(err.value)
        assert any("method plug-in not loaded (entry point broken = gsb_broken:SPEC): ImportError: needs a GPU"
                   in str(w.message) for w in caught)
    finally:
        monkeypatch.undo()
        for m in ("gsb_broken", "gsb_clash"):
            sys.modules.pop(m, None)
        METHODS.refresh()
    assert "gns" in METHODS
