"""Checks against the authors' own code, where an exported sources folder is given
(``GS_BENCH_UPSTREAM_SOURCES=DIR``, written by ``python -m gs upstream-export DIR``); skipped
otherwise. They run on the CPU: tensors their code puts on "cuda" stay on the CPU, their
rasterizer is drawn by our pure-PyTorch renderer and simple-knn by a KD-tree, so their scripts
run end to end through our runner with the recipes' fixes (a bug that would stop a GPU run
after hours shows here in minutes)."""

from __future__ import annotations

import dataclasses
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
import time
import torch
def _cuda(x):
    return isinstance(x, (str, torch.device)) and str(x).startswith("cuda")
def _on_cpu(f):  # the authors' code puts tensors on "cuda": keep them on the CPU
    def call(*a, **k):
        a = tuple("cpu" if _cuda(x) else x for x in a)
        if _cuda(k.get("device")):
            k["device"] = "cpu"
        return f(*a, **k)
    return call
for name in ("tensor", "zeros", "ones", "empty", "full", "arange", "rand", "randn", "eye", "linspace", "randint",
             "randperm", "zeros_like", "ones_like", "empty_like", "full_like", "rand_like"):
    setattr(torch, name, _on_cpu(getattr(torch, name)))
torch.Tensor.to = _on_cpu(torch.Tensor.to)
torch.Tensor.cuda = lambda self, *a, **k: self
class _Properties:
    total_memory, name = 16 * 1024 ** 3, "CPU stand-in"
class _Event:  # CUDA timing events, on the wall clock
    def __init__(self, *a, **k):
        self.t = None
    def record(self, *a, **k):
        self.t = time.perf_counter()
    def synchronize(self):
        pass
    def elapsed_time(self, other):
        return (other.t - self.t) * 1000.0
torch.cuda.set_device = lambda *a, **k: None
torch.cuda.empty_cache = lambda *a, **k: None
torch.cuda.synchronize = lambda *a, **k: None
torch.cuda.get_device_properties = lambda *a, **k: _Properties()
torch.cuda.Event = _Event
'''
#: the Inria rasterizer's Python API drawn by our pure-PyTorch renderer (colour, radii, a zero
#: depth image; the screen-space gradient is not routed, so nothing densifies)
RASTERIZER_STAND_IN = '''\
from typing import NamedTuple
import torch
from gs.camera import Camera
from gs.render.torch_backend import rasterize
class GaussianRasterizationSettings(NamedTuple):
    image_height: int
    image_width: int
    tanfovx: float
    tanfovy: float
    bg: torch.Tensor
    scale_modifier: float
    viewmatrix: torch.Tensor
    projmatrix: torch.Tensor
    sh_degree: int
    campos: torch.Tensor
    prefiltered: bool
    debug: bool
    antialiasing: bool = False
class GaussianRasterizer(torch.nn.Module):
    def __init__(self, raster_settings):
        super().__init__()
        self.raster_settings = raster_settings
    def forward(self, means3D, means2D, opacities, shs=None, colors_precomp=None, scales=None, rotations=None,
                cov3D_precomp=None):
        s = self.raster_settings
        W, H = int(s.image_width), int(s.image_height)
        cam = Camera(viewmat=s.viewmatrix.T.contiguous(), fx=0.5 * W / s.tanfovx, fy=0.5 * H / s.tanfovy,
                     cx=W / 2, cy=H / 2, width=W, height=H)
        colors, degree = (shs[:, :(s.sh_degree + 1) ** 2], s.sh_degree) if shs is not None else (colors_precomp, None)
        out = rasterize(means3D, rotations, scales * s.scale_modifier, opacities.reshape(-1), colors, cam,
                        sh_degree=degree, background=s.bg)
        return out.image.permute(2, 0, 1) + 0.0 * means2D.sum(), out.radii, torch.zeros(1, H, W)
'''
STAND_INS = {  # their CUDA extensions, on the CPU
    "sitecustomize.py": CPU_STAND_IN,
    "diff_gaussian_rasterization/__init__.py": RASTERIZER_STAND_IN,
    "simple_knn/__init__.py": "",
    "simple_knn/_C.py": "import torch\nfrom scipy.spatial import cKDTree\n"
                        "def distCUDA2(points):  # mean squared distance to the 3 nearest other points\n"
                        "    p = points.detach().double().numpy()\n"
                        "    return torch.from_numpy((cKDTree(p).query(p, k=4)[0][:, 1:] ** 2).mean(1)).float()\n",
    "torchvision/__init__.py": "",  # imported by HGSC's train.py, unused
}


def stand_in_env(site: Path, *paths: Path, extra: str = "") -> dict[str, str]:
    """Write the stand-ins (and ``extra`` at the end of sitecustomize) into ``site``; the
    environment that puts them, ``paths`` and this project first on PYTHONPATH, without a GPU."""
    for rel, text in STAND_INS.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text + (extra if rel == "sitecustomize.py" else ""))
    project = Path(runner.__file__).resolve().parents[2]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, [site, *paths, project])), CUDA_VISIBLE_DEVICES="")


@pytest.mark.skipif(importlib.util.find_spec("bitarray") is None, reason="the authors' NSVQ-GS code needs bitarray")
def test_the_authors_nsvq_decoder_reads_our_paper_layout_zip_back_to_our_model(tmp_path):
    from test_nsvqgs import quantized_model_and_aux

    repository, commit = upstream_pin("nsvqgs")
    src = runner.checkout(repository, commit, tmp_path / "cache", RECIPES["nsvqgs"], SOURCES)
    model, aux = quantized_model_and_aux(n=500)
    books = {k: torch.from_numpy(aux[ARTIFACT_KEY][f"codebook.{k}"]) for k in ("scales", "quats", "sh0", "shN")}
    idx = {k: torch.from_numpy(aux[ARTIFACT_KEY][f"index.{k}"]) for k in books}
    bitstream = tmp_path / "compressed_model.zip"
    bitstream.write_bytes(upstream_zip(model.params["means"], model.params["opacities"], books, idx))
    env = stand_in_env(tmp_path / "site")
    decoder = Path(runner.__file__).with_name("decode_nsvqgs.py")
    run = subprocess.run([sys.executable, str(decoder), str(bitstream), str(tmp_path / "out.ply"),
                          str(tmp_path / "decode.json")], cwd=src, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    decoded = GaussianModel.load_ply(tmp_path / "out.ply")
    for key, value in model.params.items():
        assert torch.equal(decoded.params[key].detach().reshape(value.shape), value.detach()), key


#: HGSC's train.py computes each Gaussian's significance with its CUDA rasterizer before it
#: codes anything; here every Gaussian's significance is its opacity (the pruning still drops
#: the chosen percentile)
SIGNIFICANCE_STAND_IN = """
import gaussian_renderer
def _significance_only(view, pc, pipe, bg, *a, **k):
    return {"significance_o": pc.get_opacity.detach().reshape(-1).double()}
gaussian_renderer.render = _significance_only
"""


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
    env = stand_in_env(tmp_path / "site", src, extra=SIGNIFICANCE_STAND_IN)
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
    assert stats["anchor_attribute_files_bytes"] > parts["anchor_attributes_raht"]  # + the positions, 56 times
    assert stats["size_bytes"] < (tmp_path / "in.ply").stat().st_size / 4  # coded, not copied
    assert 0.30 * n <= stats["num_gaussians"] <= 0.40 * n  # 66 % pruned by significance
    assert stats["encode_seconds"] > 0 and stats["decode_seconds"] > 0


@pytest.mark.skipif(importlib.util.find_spec("bitarray") is None, reason="the authors' NSVQ-GS code needs bitarray")
def test_the_authors_nsvq_trains_saves_and_decodes_through_our_runner(generated_scene_dir, tmp_path, monkeypatch):
    """The authors' train_newvq.py, on the CPU with our renderer for their rasterizer, runs
    through run_upstream with the recipe's fixes: training, k-means codebooks, VQ, the 2k
    fine-tune and the save of compressed_model.zip, which their decoder reads back into the PLY
    we score. The schedule is shortened (VQ from 50, densification off before it, as in the
    recipe where VQ starts after densification) so the 2k fine-tune is the bulk of the run."""
    recipe = dataclasses.replace(RECIPES["nsvqgs"], run_length=lambda iterations, params: iterations,
                                 fixed_args=(*RECIPES["nsvqgs"].fixed_args, "--densify_until_iter", "40"))
    repository, commit = upstream_pin("nsvqgs")
    src = runner.checkout(repository, commit, tmp_path / "cache", recipe, SOURCES)
    monkeypatch.setattr(runner, "_prepared_env", lambda *a, **k: (src, stand_in_env(tmp_path / "site")))
    params = {"k_scale": 16, "k_rotation": 16, "k_dc": 16, "k_sh": 16, "vq_start": 50}
    out = tmp_path / "run" / "point_cloud.ply"
    stats = runner.run_upstream(recipe, repository, commit, generated_scene_dir, {}, 2100, params, out,
                                tmp_path / "run" / "train_stats.json", tmp_path / "cache")
    bitstream = next((tmp_path / "run" / "upstream_output").glob("point_cloud/iteration_2100/compressed_model.zip"))
    assert stats["size_bytes"] == bitstream.stat().st_size and stats["decode_seconds"] > 0
    decoded = GaussianModel.load_ply(out)
    assert decoded.num_gaussians == stats["num_gaussians"] > 0
    for key in ("scales", "quats", "sh0", "shN"):  # every quantized attribute takes at most k values
        rows = decoded.params[key].detach().reshape(decoded.num_gaussians, -1)
        assert len(torch.unique(rows, dim=0)) <= 16, key
