"""Checks against the authors' own code, where an exported sources folder is given
(``GS_BENCH_UPSTREAM_SOURCES=DIR``, written by ``python -m gs upstream-export DIR``); skipped
otherwise. They run on the CPU: the authors' modules are imported with stand-ins for their CUDA
extensions, and tensors their code puts on "cuda" stay on the CPU."""

from __future__ import annotations

import importlib.util
import os
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
