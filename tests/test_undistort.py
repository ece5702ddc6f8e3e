"""Lens undistortion on load: agreement with OpenCV's models, the cropped pinhole camera, and
distorted captures in the COLMAP, instant-ngp and nerfstudio formats."""

from __future__ import annotations

import json
import math
import warnings

import cv2
import numpy as np
import pytest
import torch

from gs.data import generate_scene, load_scene
from gs.data.synthetic import distort_capture
from gs.data.undistort import build_undistorter, colmap_lens, make_lens, undistort_points

K = (400.0, 410.0, 322.0, 236.0)
W, H = 640, 480
LENSES = {
    "SIMPLE_RADIAL": make_lens("OPENCV", [0.08], "SIMPLE_RADIAL"),
    "RADIAL barrel": make_lens("OPENCV", [-0.25, 0.05], "RADIAL"),
    "OPENCV": make_lens("OPENCV", [-0.1, 0.02, 0.001, -0.002], "OPENCV"),
    "OPENCV k3": make_lens("OPENCV", [-0.1, 0.02, 0.001, -0.002, 0.003], "OPENCV"),
    "FULL_OPENCV": make_lens("OPENCV", [0.1, 0.02, 0.001, -0.002, 0.003, 0.05, 0.01, 0.001], "FULL_OPENCV"),
    "OPENCV_FISHEYE": make_lens("OPENCV_FISHEYE", [0.05, -0.01, 0.002, 0.0005], "OPENCV_FISHEYE"),
}


def _opencv_distort(lens, xy: np.ndarray) -> np.ndarray:
    """OpenCV's own forward model, pixel centres at +0.5."""
    Kcv = np.array([[K[0], 0, K[2] - 0.5], [0, K[1], K[3] - 0.5], [0, 0, 1.0]])
    if lens.fisheye:
        out = cv2.fisheye.distortPoints(xy.reshape(-1, 1, 2), Kcv, lens.dist())
    else:
        pts = np.concatenate([xy, np.ones((len(xy), 1))], 1).reshape(-1, 1, 3)
        out, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), Kcv, lens.dist())
    return out.reshape(-1, 2) + 0.5


@pytest.mark.parametrize("name", list(LENSES))
def test_remap_matches_opencv_model_on_a_grid(name):
    lens = LENSES[name]
    u = build_undistorter(lens, *K, W, H)
    # every output pixel of a grid: where the remap reads it vs OpenCV's projection of its ray
    jj, ii = np.meshgrid(np.arange(0, u.height, 5) + 0.5, np.arange(0, u.width, 5) + 0.5, indexing="ij")
    uv = np.stack([ii.ravel(), jj.ravel()], 1)
    xy = np.stack([(uv[:, 0] - u.cx) / u.fx, (uv[:, 1] - u.cy) / u.fy], 1)
    assert np.abs(u.source_of(uv) - _opencv_distort(lens, xy)).max() < 0.01
    # the other way: distorted grid points back to the pinhole image
    back = undistort_points(lens, K, _opencv_distort(lens, xy))
    assert np.abs((back - xy) * [u.fx, u.fy]).max() < 0.01
    # the crop holds valid pixels only (bilinear taps inside the source image)
    assert u.map_x.min() >= 0 and u.map_x.max() <= W - 1
    assert u.map_y.min() >= 0 and u.map_y.max() <= H - 1
    # and tight: on each axis the crop reaches to within 2 px of the source border (floor of
    # the size, and output pixel centres sit half a pixel inside the crop)
    assert min(u.map_x.min(), W - 1 - u.map_x.max()) < 2.0
    assert min(u.map_y.min(), H - 1 - u.map_y.max()) < 2.0
    assert (u.fx, u.fy) == (K[0], K[1])
    assert u.cx / u.width == pytest.approx(K[2] / W, abs=1e-12)


def test_remapped_image_is_the_pinhole_view():
    # a distorted photo of a smooth pattern, undistorted, equals the pattern seen by the pinhole
    lens = LENSES["OPENCV"]
    u = build_undistorter(lens, *K, W, H)

    def pattern(x, y):  # smooth function of the normalised ray
        return 127.5 + 100 * np.sin(6 * x) * np.cos(5 * y)

    jj, ii = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    xy = undistort_points(lens, K, np.stack([ii.ravel(), jj.ravel()], 1))
    distorted = pattern(xy[:, 0], xy[:, 1]).reshape(H, W).astype(np.float32)
    out = u(distorted)
    jo, io = np.meshgrid(np.arange(u.height) + 0.5, np.arange(u.width) + 0.5, indexing="ij")
    truth = pattern((io - u.cx) / u.fx, (jo - u.cy) / u.fy)
    assert np.abs(out - truth).max() < 0.5


def test_colmap_models_map_to_opencv_order():
    p = np.array([100.0, 50.0, 40.0])
    assert colmap_lens("SIMPLE_PINHOLE", p) == ((100.0, 100.0, 50.0, 40.0), None)
    (f, lens) = colmap_lens("SIMPLE_RADIAL", np.r_[p, 0.1])
    assert f == (100.0, 100.0, 50.0, 40.0) and lens.coeffs == (0.1, 0.0, 0.0, 0.0)
    assert colmap_lens("RADIAL", np.r_[p, 0.1, 0.2])[1].coeffs == (0.1, 0.2, 0.0, 0.0)
    assert colmap_lens("OPENCV", np.r_[100, 101, 50, 40, 1, 2, 3, 4.0])[1].coeffs == (1, 2, 3, 4)
    full = colmap_lens("FULL_OPENCV", np.r_[100, 101, 50, 40, 1, 2, 3, 4, 5, 6, 7, 8.0])[1]
    assert full.coeffs == (1, 2, 3, 4, 5, 6, 7, 8) and not full.fisheye
    fish = colmap_lens("OPENCV_FISHEYE", np.r_[100, 101, 50, 40, 1, 2, 3, 4.0])[1]
    assert fish.fisheye and fish.coeffs == (1, 2, 3, 4)
    assert colmap_lens("SIMPLE_RADIAL", np.r_[p, 0.0])[1] is None  # zero distortion = pinhole
    with pytest.raises(ValueError, match="FOV"):
        colmap_lens("FOV", np.r_[100, 101, 50, 40, 0.1])


# ----------------------------------------------------------------------------- captures

CAPTURES = [  # (format, COLMAP model, coefficients, focal scale)
    ("colmap", "SIMPLE_RADIAL", [0.08], 1.0),
    ("colmap", "OPENCV_FISHEYE", [0.02, 0.01, 0.0, 0.0], 1.2),
    ("ngp", "OPENCV", [0.05, 0.01, 0.002, -0.001], 1.0),
    ("ngp", "OPENCV_FISHEYE", [0.02, 0.01, 0.0, 0.0], 1.2),
    ("nerfstudio", "OPENCV", [0.05, 0.01, 0.002, -0.001], 1.0),
    ("nerfstudio", "OPENCV_FISHEYE", [0.02, 0.01, 0.0, 0.0], 1.2),
]


@pytest.fixture(scope="module")
def pinhole(tmp_path_factory):
    return generate_scene(tmp_path_factory.mktemp("pinhole") / "scene", seed=0, num_views=16,
                          width=64, height=48)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.double() - b.double()) ** 2).mean().item()
    return 10 * math.log10(255.0 ** 2 / mse)


@pytest.mark.parametrize("fmt,model,coeffs,fs", CAPTURES)
def test_distorted_capture_loads_as_the_pinhole_scene(pinhole, tmp_path, fmt, model, coeffs, fs):
    base = load_scene(pinhole)
    cap = distort_capture(pinhole, tmp_path / "cap", fmt, model, coeffs, focal_scale=fs)
    s = load_scene(cap)
    assert model.split("_")[0] in s.undistortion and "undistorted on load" in s.undistortion
    stem = lambda n: n.rsplit("/", 1)[-1].split(".")[0]  # noqa: E731
    assert [stem(c.name) for c in s.test_cameras] == [stem(c.name) for c in base.test_cameras]
    assert s.points.shape == base.points.shape
    for c, c0 in zip(s.train_cameras, base.train_cameras):
        assert torch.allclose(c.viewmat, c0.viewmat, atol=1e-5)
    # ground truth went through the same remap: the test view equals the pinhole render of the
    # generator, read through the new camera (which keeps the distorted camera's focal)
    c, c0 = s.test_cameras[0], base.test_cameras[0]
    img0 = base.test_images[0].numpy().astype(np.float32)
    jj, ii = np.meshgrid(np.arange(c.height) + 0.5, np.arange(c.width) + 0.5, indexing="ij")
    mx = ((ii - c.cx) / c.fx * c0.fx + c0.cx - 0.5).astype(np.float32)
    my = ((jj - c.cy) / c.fy * c0.fy + c0.cy - 0.5).astype(np.float32)
    ref = cv2.remap(img0, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    got = s.test_images[0][2:-2, 2:-2]
    assert _psnr(got, torch.from_numpy(ref)[2:-2, 2:-2]) > 30.0


def test_undistortion_follows_the_image_folder_size(pinhole, tmp_path):
    # images_2 at half size: the lens is applied to intrinsics rescaled to the file's size
    from PIL import Image

    cap = distort_capture(pinhole, tmp_path / "cap", "colmap", "SIMPLE_RADIAL", [0.08])
    (cap / "images_2").mkdir()
    for p in (cap / "images").iterdir():
        Image.open(p).resize((32, 24), Image.BICUBIC).save(cap / "images_2" / p.name)
    full, half = load_scene(cap), load_scene(cap, images="images_2")
    c, h = full.train_cameras[0], half.train_cameras[0]
    assert abs(h.width - c.width / 2) <= 1 and abs(h.height - c.height / 2) <= 1
    assert h.fx == pytest.approx(c.fx / 2) and h.cx / h.width == pytest.approx(c.cx / c.width)


@pytest.mark.slow
def test_distorted_captures_train_as_well_as_the_pinhole_scene(pinhole, tmp_path):
    """Done-when: a distorted capture in each format trains to within 1 dB of the pinhole scene.

    Both models are scored on the same pixels: the pinhole scene's test views (its own ground
    truth, no resampling) inside the window the undistorted cameras cover (the crop removes a
    border no distorted training view saw either)."""
    from gs.render import render
    from gs.methods.registry import train_method
    from gs.train.trainer import TrainConfig

    base = load_scene(pinhole)
    cfg = TrainConfig(iterations=300, backend="torch", device="cpu", progress=False, seed=0)

    def trained(root):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = load_scene(root)
        return s, train_method(s, "3dgs", {}, None, cfg).model

    def psnr_in_window(model, cam) -> float:
        vals = []
        with torch.no_grad():
            for c0, img in zip(base.test_cameras, base.test_images):
                out = render(model, c0, backend="torch", background=base.background).image.clamp(0, 1) * 255
                x0, y0 = math.ceil(c0.cx - cam.cx), math.ceil(c0.cy - cam.cy)
                x1, y1 = math.floor(c0.cx - cam.cx + cam.width), math.floor(c0.cy - cam.cy + cam.height)
                vals.append(_psnr(out[y0:y1, x0:x1], img[y0:y1, x0:x1]))
        return sum(vals) / len(vals)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the CPU kernels run faster alone than fighting over shared cores
    try:
        _, ref_model = trained(pinhole)
        got = {}
        for fmt, model, coeffs, fs in [CAPTURES[0], CAPTURES[2], CAPTURES[4]]:
            s, m = trained(distort_capture(pinhole, tmp_path / fmt, fmt, model, coeffs, focal_scale=fs))
            cam = s.test_cameras[0]
            got[fmt] = (psnr_in_window(m, cam), psnr_in_window(ref_model, cam))
    finally:
        torch.set_num_threads(threads)
    print("\n".join(f"{k}: distorted capture {v:.2f} dB, pinhole scene {r:.2f} dB (same pixels)"
                    for k, (v, r) in got.items()))
    for fmt, (v, r) in got.items():
        assert abs(v - r) < 1.0, (fmt, v, r)


def test_undistortion_recorded_in_metrics_protocol(pinhole, tmp_path):
    from gs.eval.evaluate import evaluate_model
    from gs.model import GaussianModel

    cap = distort_capture(pinhole, tmp_path / "cap", "colmap", "SIMPLE_RADIAL", [0.08])
    s = load_scene(cap)
    model = GaussianModel.from_points(s.points[:200], s.colors[:200], sh_degree=0)
    evaluate_model(model, s, tmp_path / "eval", method="3dgs", dataset="synthetic", backend="torch",
                   device="cpu", fps_repeats=0, progress=False)
    protocol = json.loads((tmp_path / "eval" / "metrics.json").read_text())["protocol"]
    assert protocol["undistortion"] == s.undistortion and "SIMPLE_RADIAL" in protocol["undistortion"]
