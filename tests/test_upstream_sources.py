"""Checks against the authors' own code, where an exported sources folder is given
(``GS_BENCH_UPSTREAM_SOURCES=DIR``, written by ``python -m gs upstream-export DIR``); skipped
otherwise. They run on the CPU: the authors' modules are imported with stand-ins for their CUDA
extensions, and tensors their code puts on "cuda" stay on the CPU."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gs.methods.nsvqgs import ARTIFACT_KEY, upstream_zip
from gs.methods.registry import upstream_pin
from gs.model import GaussianModel
from gs.upstream import runner
from gs.upstream.recipes import RECIPES

SOURCES = os.environ.get("GS_BENCH_UPSTREAM_SOURCES")
pytestmark = pytest.mark.skipif(not SOURCES, reason="GS_BENCH_UPSTREAM_SOURCES not set (an exported sources folder)")

CPU_STAND_IN = '''\
import torch
_tensor = torch.tensor
def tensor(*a, **k):  # the authors' loaders build tensors on "cuda": keep them on the CPU
    if str(k.get("device", "")).startswith("cuda"):
        k["device"] = "cpu"
    return _tensor(*a, **k)
torch.tensor = tensor
'''
STUBS = {  # their modules import these CUDA extensions at the top; a decode never calls them
    "diff_gaussian_rasterization/__init__.py": "class GaussianRasterizationSettings: pass\n"
                                               "class GaussianRasterizer: pass\n",
    "simple_knn/__init__.py": "", "simple_knn/_C.py": "def distCUDA2(x): raise RuntimeError('stub')\n",
}


@pytest.mark.skipif(importlib.util.find_spec("bitarray") is None, reason="the authors' NSVQ-GS code needs bitarray")
def test_the_authors_nsvq_decoder_reads_our_paper_layout_zip_back_to_our_model(tmp_path):
    from test_nsvqgs import quantized_model_and_aux

    for rel, text in {"sitecustomize.py": CPU_STAND_IN, **STUBS}.items():
        (tmp_path / "site" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "site" / rel).write_text(text)
    repository, commit = upstream_pin("nsvqgs")
    src = runner.checkout(repository, commit, tmp_path / "cache", RECIPES["nsvqgs"], SOURCES)
    model, aux = quantized_model_and_aux(n=500)
    books = {k: torch.from_numpy(aux[ARTIFACT_KEY][f"codebook.{k}"]) for k in ("scales", "quats", "sh0", "shN")}
    idx = {k: torch.from_numpy(aux[ARTIFACT_KEY][f"index.{k}"]) for k in books}
    bitstream = tmp_path / "compressed_model.zip"
    bitstream.write_bytes(upstream_zip(model.params["means"], model.params["opacities"], books, idx))
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"), CUDA_VISIBLE_DEVICES="")
    decoder = Path(runner.__file__).with_name("decode_nsvqgs.py")
    run = subprocess.run([sys.executable, str(decoder), str(bitstream), str(tmp_path / "out.ply"),
                          str(tmp_path / "decode.json")], cwd=src, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    decoded = GaussianModel.load_ply(tmp_path / "out.ply")
    for key, value in model.params.items():
        assert torch.equal(decoded.params[key].detach().reshape(value.shape), value.detach()), key


#: HGSC's train.py computes each Gaussian's significance with its CUDA rasterizer before it
#: codes anything; on the CPU a stand-in gives every Gaussian its opacity as significance (the
#: pruning still drops the chosen percentile), and ``.cuda()`` keeps tensors where they are
HGSC_CPU_STAND_IN = CPU_STAND_IN + '''\
torch.Tensor.cuda = lambda self, *a, **k: self
torch.cuda.set_device = lambda *a, **k: None
def _cuda(x):
    return isinstance(x, (str, torch.device)) and str(x).startswith("cuda")
def _on_cpu(f):
    def call(*a, **k):
        a = tuple("cpu" if _cuda(x) else x for x in a)
        if _cuda(k.get("device")):
            k["device"] = "cpu"
        return f(*a, **k)
    return call
torch.Tensor.to = _on_cpu(torch.Tensor.to)
for name in ("zeros", "ones", "empty", "full", "arange", "rand", "randn"):
    setattr(torch, name, _on_cpu(getattr(torch, name)))
import gaussian_renderer
def _significance_only(view, pc, pipe, bg, *a, **k):
    return {"significance_o": pc.get_opacity.detach().reshape(-1).double()}
gaussian_renderer.render = _significance_only
'''


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("make") is None, reason="TMC13 needs cmake and make")
def test_the_authors_hgsc_codes_a_model_with_tmc13_and_we_read_their_sizes(generated_scene, tmp_path, monkeypatch):
    """The authors' HGSC train.py (its CUDA significance pass stood in for) codes a model with
    MPEG TMC13 built by our recipe, through run_upstream_codec: their streams' bytes are read
    back, and their decoded model has the pruned count."""
    import numpy as np

    recipe = RECIPES["hgsc"]
    repository, commit = upstream_pin("hgsc")
    cache = tmp_path / "cache"
    src = runner.checkout(repository, commit, cache, recipe, SOURCES)
    runner.install_tools(src, recipe, cache, SOURCES)  # builds TMC13 from the exported sources
    site = tmp_path / "site"
    stubs = {"sitecustomize.py": HGSC_CPU_STAND_IN, **STUBS, "torchvision/__init__.py": ""}  # imported, unused
    for rel, text in stubs.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(src)]), CUDA_VISIBLE_DEVICES="")
    monkeypatch.setattr(runner, "_prepared_env", lambda *a, **k: (src, env))  # no CUDA build on the CPU
    rng = np.random.default_rng(0)
    n = 3000
    model = GaussianModel.from_points(rng.uniform(-1, 1, (n, 3)), rng.uniform(0, 1, (n, 3)))
    with torch.no_grad():  # trained-like spread: their LoD quantizer divides by each attribute's range
        for key in ("shN", "opacities", "scales", "quats"):
            model.params[key].add_(torch.from_numpy(rng.normal(0, 0.3, model.params[key].shape)).float())
    model.save_ply(tmp_path / "in.ply")
    cameras = list(generated_scene.train_cameras) + list(generated_scene.test_cameras)
    out = tmp_path / "run" / "point_cloud.ply"
    stats = runner.run_upstream_codec(recipe, repository, commit, tmp_path / "in.ply", cameras,
                                      {"prune_percent": 66}, out, tmp_path / "run" / "codec_stats.json", cache)
    parts = stats["components"]
    assert min(parts.values()) > 0 and stats["size_bytes"] == sum(parts.values())
    assert stats["size_bytes"] < (tmp_path / "in.ply").stat().st_size / 4  # coded, not copied
    assert 0.30 * n <= stats["num_gaussians"] <= 0.40 * n  # 66 % pruned by significance
    assert stats["encode_seconds"] > 0 and stats["decode_seconds"] > 0
