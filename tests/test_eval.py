"""gs.eval: metrics conventions, the metrics JSON of evaluate_model, provenance."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gs.eval import evaluate as evaluate_mod
from gs.eval.evaluate import REQUIRED_KEYS, EvalViews, evaluate_model, measure_fps, peak_memory, render_and_score
from gs.eval.metrics import LpipsMetric, from_uint8, psnr, ssim, to_uint8
from gs.eval.provenance import describe_device, git_commit, sha256_file, sha256_files, versions
from gs.io import json_safe, write_json


# ---------------------------------------------------------------------------- PSNR
def test_psnr_identical_is_inf():
    a = torch.rand(3, 8, 8)
    assert math.isinf(float(psnr(a, a)))


def test_psnr_known_mse():
    a = torch.zeros(2, 3, 4, 4)
    b = torch.full_like(a, 0.1)  # MSE = 0.01 -> 20 dB
    assert float(psnr(a, b)) == pytest.approx(20.0, abs=1e-4)
    per = psnr(a, torch.cat([b[:1], torch.full_like(b[:1], 0.01)]), reduction="none")
    assert per.tolist() == pytest.approx([20.0, 40.0], abs=1e-3)
    # mean of per-image PSNR, not the PSNR of the mean MSE
    assert float(psnr(a, torch.cat([b[:1], torch.full_like(b[:1], 0.01)]))) == pytest.approx(30.0, abs=1e-3)


def test_psnr_uint8_inputs_and_quantisation():
    x = torch.rand(3, 5, 7)
    q = to_uint8(x)
    assert q.dtype == torch.uint8
    # upstream rounding: floor(x*255 + 0.5)
    assert torch.equal(q, torch.floor(x * 255 + 0.5).clamp(0, 255).to(torch.uint8))
    assert float(psnr(q, to_uint8(x))) == math.inf
    assert float(psnr(q, to_uint8(1 - x))) == pytest.approx(float(psnr(from_uint8(q), from_uint8(to_uint8(1 - x)))))


def test_psnr_shape_mismatch_errors():
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(torch.rand(3, 4, 4), torch.rand(3, 4, 5))


# ---------------------------------------------------------------------------- SSIM
def _slow_ssim(img1: torch.Tensor, img2: torch.Tensor, ws: int = 11, sigma: float = 1.5) -> float:
    """The upstream 3DGS code, transcribed: full 2-D window, zero padding, mean of the map."""
    g = torch.tensor([math.exp(-((x - ws // 2) ** 2) / float(2 * sigma**2)) for x in range(ws)], dtype=torch.float64)
    g = g / g.sum()
    c = img1.shape[1]
    w = (g[:, None] @ g[None, :])[None, None].expand(c, 1, ws, ws).contiguous()
    mu1 = F.conv2d(img1, w, padding=ws // 2, groups=c)
    mu2 = F.conv2d(img2, w, padding=ws // 2, groups=c)
    s1 = F.conv2d(img1 * img1, w, padding=ws // 2, groups=c) - mu1**2
    s2 = F.conv2d(img2 * img2, w, padding=ws // 2, groups=c) - mu2**2
    s12 = F.conv2d(img1 * img2, w, padding=ws // 2, groups=c) - mu1 * mu2
    m = ((2 * mu1 * mu2 + 0.01**2) * (2 * s12 + 0.03**2)) / ((mu1**2 + mu2**2 + 0.01**2) * (s1 + s2 + 0.03**2))
    return float(m.mean())


def test_ssim_identical_is_one():
    a = torch.rand(2, 3, 32, 40)
    assert float(ssim(a, a)) == pytest.approx(1.0, abs=1e-6)
    assert float(ssim(a[0], a[0])) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("shape", [(1, 3, 20, 31), (2, 3, 48, 17), (1, 1, 11, 11)])
def test_ssim_matches_reference(shape):
    g = torch.Generator().manual_seed(0)
    a = torch.rand(shape, generator=g, dtype=torch.float64)
    b = (a + 0.2 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    assert float(ssim(a, b)) == pytest.approx(_slow_ssim(a, b), abs=1e-10)
    # float32 stays close too
    assert float(ssim(a.float(), b.float())) == pytest.approx(_slow_ssim(a, b), abs=1e-5)


def test_ssim_per_image_and_gradient():
    a = torch.rand(3, 3, 16, 16)
    b = torch.rand(3, 3, 16, 16, requires_grad=True)
    per = ssim(a, b, reduction="none")
    assert per.shape == (3,)
    assert float(per.detach().mean()) == pytest.approx(float(ssim(a, b).detach()), abs=1e-6)
    (1 - ssim(a, b)).backward()
    assert b.grad is not None and torch.isfinite(b.grad).all() and b.grad.abs().sum() > 0


# ---------------------------------------------------------------------------- LPIPS
def test_lpips_unavailable_returns_none_with_reason(tmp_path):
    m = LpipsMetric(hub_dir=tmp_path)  # an empty hub cache: never downloads
    if m.available:  # pragma: no cover - only where lpips + cached weights exist
        pytest.skip("LPIPS weights available here")
    assert m.reason and ("not installed" in m.reason or "not in the torch hub cache" in m.reason
                         or "not importable" in m.reason)
    assert m(torch.rand(3, 8, 8), torch.rand(3, 8, 8)) is None
    assert m.net == "vgg"


def test_metrics_module_does_not_import_torchvision():
    import subprocess
    import sys

    code = "import sys, gs.eval; assert 'torchvision' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------- evaluate_model
def _tiny_scene(n_test: int = 3, w: int = 12, h: int = 9, white: bool = False):
    from gs.data.scene import Scene
    from gs.camera import Camera

    g = torch.Generator().manual_seed(1)

    def cam(i: int) -> Camera:
        vm = torch.eye(4)
        vm[2, 3] = 3.0 + 0.1 * i
        vm[0, 3] = 0.05 * i
        return Camera(vm, fx=10.0, fy=10.0, cx=w / 2, cy=h / 2, width=w, height=h, name=f"img_{i:03d}.png")

    imgs = [(torch.rand(h, w, 3, generator=g) * 255).to(torch.uint8) for _ in range(n_test + 2)]
    return Scene(
        name="tiny", source=Path("."), train_cameras=[cam(i) for i in range(2)], train_images=imgs[:2],
        test_cameras=[cam(i) for i in range(2, 2 + n_test)], test_images=imgs[2:],
        points=np.zeros((4, 3), np.float32), colors=np.full((4, 3), 0.5, np.float32), extent=1.0,
        white_background=white,
    )


def _tiny_model(n: int = 64):
    from gs.model import GaussianModel

    g = torch.Generator().manual_seed(2)
    xyz = torch.randn(n, 3, generator=g) * 0.5
    rgb = torch.rand(n, 3, generator=g)
    return GaussianModel.from_points(xyz.numpy(), rgb.numpy(), sh_degree=1, init_opacity=0.5)


@pytest.fixture
def fake_backend():
    """A deterministic stand-in rasterizer (flat image of the mean colour plus a gradient), so
    the evaluation bookkeeping is tested without depending on a real backend."""
    from gs.render import base
    from gs.render.base import RenderOutput

    def rasterize(means, quats, scales, opacities, colors, camera, *, sh_degree, background=None, **_):
        rgb = (colors[:, 0, :] * 0.28209479 + 0.5).mean(0).clamp(0, 1)
        ramp = torch.linspace(0, 0.2, camera.width, device=means.device)[None, :, None]
        img = (rgb[None, None, :] * 0.8 + ramp).expand(camera.height, camera.width, 3).clamp(0, 1)
        n = means.shape[0]
        return RenderOutput(image=img, alpha=torch.ones(camera.height, camera.width, 1),
                            means2d=torch.zeros(n, 2), radii=torch.ones(n, dtype=torch.int32),
                            grad_to_ndc=torch.tensor([camera.width / 2, camera.height / 2]))

    base.register_backend("evaltest", lambda: rasterize)
    yield "evaltest"
    base._BACKENDS.pop("evaltest", None)


def _check_nulls_have_reasons(obj, where="root"):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if v is None and not k.endswith("_reason"):
                assert f"{k}_reason" in obj and obj[f"{k}_reason"], f"{where}.{k} is null without a reason"
            _check_nulls_have_reasons(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _check_nulls_have_reasons(v, f"{where}[{i}]")


def _run_eval(tmp_path, backend, **kw):
    scene = _tiny_scene()
    model = _tiny_model()
    ply = model.save_ply(tmp_path / "model" / "point_cloud.ply")
    kw.setdefault("size_bytes", ply.stat().st_size)
    out = evaluate_model(model, scene, tmp_path / "eval", backend=backend, device="cpu", method="3dgs",
                         variant="default", dataset="synthetic", model_path=ply,
                         extra={"train_seconds": 1.5, "note": "x"}, fps_repeats=2, progress=False, **kw)
    return scene, model, out


def test_evaluate_model_writes_pngs_and_json(tmp_path, fake_backend):
    scene, model, out = _run_eval(tmp_path, fake_backend)
    d = tmp_path / "eval"
    data = json.loads((d / "metrics.json").read_text())
    assert data["metrics"] == out["metrics"] and data["per_image"] == out["per_image"]
    for key in REQUIRED_KEYS:
        assert key in data, key
    assert data["schema_version"] == evaluate_mod.SCHEMA_VERSION
    assert data["protocol"]["resolution"] == "12x9"
    assert data["protocol"]["lpips_net"] == "vgg"
    assert data["protocol"]["mb"] == 1_000_000
    assert "every 8th" in data["protocol"]["split"]
    assert len(data["per_image"]) == 3
    for e in data["per_image"]:
        r = Image.open(d / e["render"])
        g = Image.open(d / e["gt"])
        assert r.size == g.size == (12, 9) and r.mode == "RGB"
    # metrics are recomputable from the PNGs on disk
    e0 = data["per_image"][0]
    r = torch.from_numpy(np.array(Image.open(d / e0["render"]))).permute(2, 0, 1)
    g = torch.from_numpy(np.array(Image.open(d / e0["gt"]))).permute(2, 0, 1)
    assert float(psnr(r, g)) == pytest.approx(e0["psnr"], abs=1e-4)
    assert float(ssim(r, g)) == pytest.approx(e0["ssim"], abs=1e-6)
    assert torch.equal(g.permute(1, 2, 0), scene.test_images[0])
    assert data["metrics"]["psnr"] == pytest.approx(np.mean([e["psnr"] for e in data["per_image"]]))
    assert data["num_gaussians"] == model.num_gaussians
    assert data["size_mb"] == pytest.approx(data["size_bytes"] / 1e6)
    assert data["timings"]["train_seconds"] == 1.5
    assert data["timings"]["encode_seconds"] is None and data["timings"]["encode_seconds_reason"]
    assert data["extra"] == {"note": "x"}
    assert data["fps"] > 0 and data["fps_device"] == "cpu"
    assert data["peak_gpu_memory_bytes"] is None and data["peak_gpu_memory_bytes_reason"]
    assert data["metrics"]["lpips"] is None and data["metrics"]["lpips_reason"]
    assert str(tmp_path / "model" / "point_cloud.ply") in data["input_sha256"]
    assert data["backend"] == "evaltest" and data["device"]["type"] == "cpu"
    assert data["seed"] == 0 and data["versions"]["torch"] == torch.__version__
    _check_nulls_have_reasons(data)
    # no temporary files left behind by the atomic write
    assert [p.name for p in d.iterdir() if p.is_file()] == ["metrics.json"]


def test_evaluate_model_missing_size_and_perfect_render(tmp_path, fake_backend, monkeypatch):
    scene = _tiny_scene(n_test=1)
    model = _tiny_model()
    # make the ground truth equal to what the fake backend renders -> PSNR inf -> null + reason
    from gs.render import render

    img = render(model, scene.test_cameras[0], backend=fake_backend, background=scene.background).image
    scene.test_images[0] = to_uint8(img)
    out = evaluate_model(model, scene, tmp_path, backend=fake_backend, device="cpu", method="m",
                         dataset="d", size_bytes=None, fps_repeats=0, save_gt=False, progress=False)
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["per_image"][0]["psnr"] is None and "inf" in data["per_image"][0]["psnr_reason"]
    assert data["metrics"]["psnr"] is None and data["metrics"]["psnr_reason"]
    assert data["metrics"]["ssim"] == pytest.approx(1.0)
    assert data["size_bytes"] is None and data["size_bytes_reason"]
    assert data["fps"] is None and "fps_repeats=0" in data["fps_reason"]
    assert not (tmp_path / "gt").exists()
    _check_nulls_have_reasons(data)
    assert out["scene"] == "tiny"


def test_evaluate_model_rejects_size_mismatch(tmp_path, fake_backend):
    scene = _tiny_scene(n_test=1)
    scene.test_images[0] = scene.test_images[0][:-1]
    with pytest.raises(ValueError, match="img_002.png"):
        evaluate_model(_tiny_model(), scene, tmp_path, backend=fake_backend, device="cpu", method="m",
                       dataset="d", progress=False)


def test_evaluate_model_torch_backend(tmp_path):
    pytest.importorskip("gs.render.torch_backend")
    scene, model, out = _run_eval(tmp_path, "torch")
    data = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert data["backend"] == "torch"
    assert len(list((tmp_path / "eval" / "renders").glob("*.png"))) == 3
    assert all(e["psnr"] is not None and e["psnr"] > 0 for e in data["per_image"])
    _check_nulls_have_reasons(data)


def test_write_json_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "m.json"
    write_json(p, {"a": 1})
    with pytest.raises(TypeError):
        write_json(p, {"a": object()})  # not JSON: the old file stays, no temporary file is left
    assert json.loads(p.read_text()) == {"a": 1}
    assert [q.name for q in tmp_path.iterdir()] == ["m.json"]


def test_json_safe_converts_results():
    data = {1: torch.tensor([0.5, float("nan")]), "n": np.int64(3), "f": np.float32(0.25), "inf": float("inf"),
            "p": Path("a/b"), "t": (np.bool_(True), torch.tensor(2.0)), "s": "x"}
    assert json_safe(data) == {"1": [0.5, None], "n": 3, "f": 0.25, "inf": None, "p": "a/b", "t": [True, 2.0],
                               "s": "x"}
    assert json.loads(json.dumps(json_safe(data), allow_nan=False))["n"] == 3


def test_evaluation_steps_on_a_generated_scene(tmp_path, generated_scene, trained_model):
    """render_and_score, measure_fps and peak_memory on their own give what evaluate_model
    records for the same model."""
    model, run_dir = trained_model
    views = EvalViews.of(generated_scene, "demo", "torch", "cpu")
    assert views.backend == "torch" and len(views.cameras) == len(generated_scene.test_cameras) > 0
    per_image, metrics = render_and_score(model, views, tmp_path / "steps", lpips_metric=LpipsMetric("cpu"),
                                          progress=False)
    assert [e["render"] for e in per_image] == [f"renders/{i:05d}.png" for i in range(len(views.cameras))]
    assert (tmp_path / "steps" / "gt" / "00000.png").is_file()
    assert metrics["psnr"] == pytest.approx(np.mean([e["psnr"] for e in per_image]))
    fps = measure_fps(model, views, 0)
    assert fps["fps"] is None and fps["fps_repeats"] == 0 and "fps_repeats=0" in fps["fps_reason"]
    assert measure_fps(model, views, 2)["fps"] > 0
    assert peak_memory(views.device, True, False)["peak_gpu_memory_bytes"] is None

    out = evaluate_model(model, generated_scene, tmp_path / "full", backend="torch", device="cpu", method="3dgs",
                         dataset="generated", model_path=run_dir / "point_cloud.ply", fps_repeats=0, progress=False)
    assert out["metrics"] == metrics and out["per_image"] == per_image
    assert json.loads((tmp_path / "full" / "metrics.json").read_text())["metrics"] == json_safe(metrics)


# ---------------------------------------------------------------------------- provenance
def test_provenance(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    assert sha256_file(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_bytes(b"abc")
    h = sha256_files([f, tmp_path / "d", tmp_path / "missing"])
    assert h[str(tmp_path / "d" / "x")] == h[str(f)] and h[str(tmp_path / "missing")] is None
    v = versions()
    assert v["torch"] == torch.__version__ and v["python"]
    assert git_commit(tmp_path) is None  # not a repository
    assert describe_device("cpu")["type"] == "cpu"
