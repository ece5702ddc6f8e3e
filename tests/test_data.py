"""gs.data: COLMAP / transforms readers, the loading protocol, bad inputs."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gs.data import Scene, SceneError, camera_extent, load_scene
from gs.data import colmap
from gs.data.colmap import ColmapCamera, ColmapImage, ColmapPoints

import os

# real scenes (LLFF fern, beer_can) for the optional real-data tests: a folder given by the environment
REAL_SCENES = Path(os.environ.get("GS_BENCH_REAL_SCENES", "/nonexistent"))
FERN = REAL_SCENES / "fern"
BEER = REAL_SCENES / "beer_can"


# ----------------------------------------------------------------------------- helpers


def _look_at_w2c(eye, target=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    eye = np.asarray(eye, float)
    fwd = np.asarray(target, float) - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    R = np.stack([right, np.cross(fwd, right), fwd])
    return R, -R @ eye


def _tiny_model(n: int = 10, W: int = 64, H: int = 48, model: str = "PINHOLE", names=None):
    params = {"PINHOLE": [50.0, 52.0, W / 2, H / 2], "SIMPLE_PINHOLE": [50.0, W / 2, H / 2],
              "SIMPLE_RADIAL": [50.0, W / 2, H / 2, 0.05],
              "OPENCV": [50.0, 50.0, W / 2, H / 2, 0.01, 0.0, 0.0, 0.0]}[model]
    cams = {1: ColmapCamera(1, model, W, H, np.array(params))}
    names = names or [f"img_{i:03d}.png" for i in range(n)]
    # ids deliberately in reverse name order: the split must sort by name, not by id
    imgs = {}
    for k, name in enumerate(names):
        az = 2 * math.pi * k / len(names)
        R, t = _look_at_w2c([4 * math.cos(az), 4 * math.sin(az), 1.5])
        iid = len(names) - k
        imgs[iid] = ColmapImage(iid, colmap.rotmat_to_qvec(R), t, 1, name,
                                np.array([[1.5, 2.5], [10.0, 20.0]]), np.array([1, -1]))
    rng = np.random.default_rng(0)
    P = 50
    tracks = [np.array([[1, 0], [2, 0]], np.int32)] + [np.zeros((0, 2), np.int32)] * (P - 1)
    pts = ColmapPoints(np.arange(1, P + 1), rng.normal(size=(P, 3)),
                       rng.integers(0, 256, (P, 3)).astype(np.uint8), rng.random(P), tracks)
    return cams, imgs, pts


def _write_images(folder: Path, names, W: int, H: int, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(folder / name)


def make_colmap_scene(root: Path, n: int = 10, W: int = 64, H: int = 48, model: str = "PINHOLE",
                      ext: str = ".bin", sparse: str = "sparse/0") -> Path:
    cams, imgs, pts = _tiny_model(n, W, H, model)
    colmap.write_model(root / sparse, cams, imgs, pts, ext=ext)
    _write_images(root / "images", [im.name for im in imgs.values()], W, H)
    return root


# ----------------------------------------------------------------------------- COLMAP reader


@pytest.mark.parametrize("ext", [".bin", ".txt"])
def test_colmap_roundtrip(tmp_path, ext):
    cams, imgs, pts = _tiny_model(model="SIMPLE_PINHOLE")
    colmap.write_model(tmp_path, cams, imgs, pts, ext=ext)
    m = colmap.read_model(tmp_path, with_tracks=True)
    assert [f.name for f in m.files] == [f"cameras{ext}", f"images{ext}", f"points3D{ext}"]
    c = m.cameras[1]
    assert (c.model, c.width, c.height) == ("SIMPLE_PINHOLE", 64, 48)
    np.testing.assert_array_equal(c.params, cams[1].params)
    assert colmap.camera_intrinsics(c, "x") == (50.0, 50.0, 32.0, 24.0, None)
    assert sorted(m.images) == sorted(imgs)
    for iid, im in imgs.items():
        r = m.images[iid]
        assert r.name == im.name and r.camera_id == 1
        np.testing.assert_array_equal(r.qvec, im.qvec)
        np.testing.assert_array_equal(r.tvec, im.tvec)
        np.testing.assert_array_equal(r.xys, im.xys)
        np.testing.assert_array_equal(r.point3d_ids, im.point3d_ids)
    np.testing.assert_array_equal(m.points.xyz, pts.xyz)
    np.testing.assert_array_equal(m.points.rgb, pts.rgb)
    np.testing.assert_array_equal(m.points.error, pts.error)
    assert [t.tolist() for t in m.points.tracks] == [t.tolist() for t in pts.tracks]
    # without tracks: same points, the tracks skipped
    m2 = colmap.read_model(tmp_path)
    np.testing.assert_array_equal(m2.points.xyz, pts.xyz)
    assert m2.points.tracks is None


def test_quaternion_roundtrip():
    rng = np.random.default_rng(1)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[0] >= 0 else -q
        np.testing.assert_allclose(colmap.rotmat_to_qvec(colmap.qvec_to_rotmat(q)), q, atol=1e-10)


def test_text_and_binary_models_load_the_same(tmp_path):
    a = load_scene(make_colmap_scene(tmp_path / "a", ext=".bin"))
    b = load_scene(make_colmap_scene(tmp_path / "b", ext=".txt"))
    assert [c.name for c in a.train_cameras] == [c.name for c in b.train_cameras]
    for ca, cb in zip(a.train_cameras + a.test_cameras, b.train_cameras + b.test_cameras):
        torch.testing.assert_close(ca.viewmat, cb.viewmat)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.colors, b.colors)


def test_sparse_without_subfolder(tmp_path):
    s = load_scene(make_colmap_scene(tmp_path, sparse="sparse"))
    assert len(s.train_cameras) + len(s.test_cameras) == 10


# ----------------------------------------------------------------------------- protocol


def test_split_sorted_names_every_nth(tmp_path):
    names = [f"{c}.png" for c in "kbjahcigfedl"]  # 12 names, not sorted
    cams, imgs, pts = _tiny_model(names=names)
    colmap.write_model(tmp_path / "sparse" / "0", cams, imgs, pts)
    _write_images(tmp_path / "images", names, 64, 48)
    s = load_scene(tmp_path)
    srt = sorted(names)
    assert [c.name for c in s.test_cameras] == [srt[0], srt[8]]
    assert [c.name for c in s.train_cameras] == [n for i, n in enumerate(srt) if i % 8]
    s3 = load_scene(tmp_path, test_every=3)
    assert [c.name for c in s3.test_cameras] == srt[::3]
    sall = load_scene(tmp_path, eval_split=False)
    assert len(sall.train_cameras) == 12 and sall.test_cameras == []
    # images match their cameras and are RGB uint8
    for cam, img in zip(s.train_cameras, s.train_images):
        assert img.dtype == torch.uint8 and tuple(img.shape) == (cam.height, cam.width, 3)
        ref = np.asarray(Image.open(tmp_path / "images" / cam.name))
        np.testing.assert_array_equal(img.numpy(), ref)


def test_pose_convention(tmp_path):
    """A camera looking at the origin sees it at its principal point, in front of it."""
    s = load_scene(make_colmap_scene(tmp_path))
    for cam in s.train_cameras:
        p = cam.viewmat[:3, :3] @ torch.zeros(3) + cam.viewmat[:3, 3]
        assert p[2] > 0
        u, v = cam.fx * p[0] / p[2] + cam.cx, cam.fy * p[1] / p[2] + cam.cy
        assert abs(u - cam.cx) < 1e-3 and abs(v - cam.cy) < 1e-3


def test_extent_and_input_files(tmp_path):
    root = make_colmap_scene(tmp_path)
    s = load_scene(root)
    centers = torch.stack([c.center for c in s.train_cameras]).double()
    expect = 1.1 * (centers - centers.mean(0)).norm(dim=1).max()
    assert s.extent == pytest.approx(float(expect), rel=1e-6)
    assert s.extent == pytest.approx(camera_extent(s.train_cameras))
    files = {p.name for p in s.input_files}
    assert {"cameras.bin", "images.bin", "points3D.bin"} <= files
    assert len([f for f in files if f.endswith(".png")]) == 10
    assert isinstance(s, Scene) and not s.random_init and not s.white_background
    assert s.points.dtype == np.float32 and s.points.shape == (50, 3)
    assert s.colors.min() >= 0 and s.colors.max() <= 1


def test_images_folder_rescales_cameras_per_axis(tmp_path):
    root = make_colmap_scene(tmp_path, W=64, H=48)
    names = sorted(p.name for p in (root / "images").iterdir())
    _write_images(root / "images_2", names, 32, 24)
    _write_images(root / "images_odd", names, 21, 17)  # not an exact factor
    full = load_scene(root)
    half = load_scene(root, images="images_2")
    with pytest.warns(UserWarning, match="aspect ratio"):
        odd = load_scene(root, images="images_odd")
    assert half.image_folder == "images_2"
    for cf, ch, co in zip(full.train_cameras, half.train_cameras, odd.train_cameras):
        assert (ch.width, ch.height) == (32, 24)
        assert (ch.fx, ch.fy, ch.cx, ch.cy) == pytest.approx((cf.fx / 2, cf.fy / 2, cf.cx / 2, cf.cy / 2))
        assert (co.width, co.height) == (21, 17)
        assert (co.fx, co.fy) == pytest.approx((cf.fx * 21 / 64, cf.fy * 17 / 48))
        assert (co.cx, co.cy) == pytest.approx((cf.cx * 21 / 64, cf.cy * 17 / 48))
    assert tuple(odd.train_images[0].shape) == (17, 21, 3)


def test_resolution_rules(tmp_path):
    root = make_colmap_scene(tmp_path, W=64, H=48)
    base = load_scene(root)
    assert (base.train_cameras[0].width, base.train_cameras[0].height) == (64, 48)
    # -1: longest side capped at max_side
    capped = load_scene(root, max_side=32)
    c, b = capped.train_cameras[0], base.train_cameras[0]
    assert (c.width, c.height) == (32, 24) and c.fx == pytest.approx(b.fx / 2)
    assert tuple(capped.train_images[0].shape) == (24, 32, 3)
    assert load_scene(root, max_side=64).train_cameras[0].width == 64  # equal: no resize
    # r divides
    r4 = load_scene(root, resolution=4)
    assert (r4.train_cameras[0].width, r4.train_cameras[0].height) == (16, 12)
    assert r4.train_cameras[0].cy == pytest.approx(b.cy / 4)
    # above 16: a target width in pixels (upstream's `-r 1000`)
    r32 = load_scene(root, resolution=32)
    assert (r32.train_cameras[0].width, r32.train_cameras[0].height) == (32, 24)
    # extent does not depend on the resolution
    assert r4.extent == pytest.approx(base.extent)


def test_max_side_uses_longest_side_for_portrait(tmp_path):
    root = make_colmap_scene(tmp_path, W=30, H=60)
    s = load_scene(root, max_side=40)
    assert (s.train_cameras[0].width, s.train_cameras[0].height) == (20, 40)


def test_rgba_images_are_composited(tmp_path):
    root = make_colmap_scene(tmp_path, W=8, H=6)
    name = sorted(p.name for p in (root / "images").iterdir())[1]
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:3, :, 3] = 255
    Image.fromarray(rgba, "RGBA").save(root / "images" / name)
    black = load_scene(root)
    white = load_scene(root, white_background=True)
    ib = dict(zip([c.name for c in black.train_cameras], black.train_images))[name].numpy()
    iw = dict(zip([c.name for c in white.train_cameras], white.train_images))[name].numpy()
    assert ib[0, 0].tolist() == [200, 0, 0] and ib[5, 0].tolist() == [0, 0, 0]
    assert iw[0, 0].tolist() == [200, 0, 0] and iw[5, 0].tolist() == [255, 255, 255]
    assert torch.equal(white.background, torch.ones(3))


def test_16bit_grey_image(tmp_path):
    root = make_colmap_scene(tmp_path, W=8, H=6)
    name = sorted(p.name for p in (root / "images").iterdir())[1]
    Image.fromarray(np.full((6, 8), 257 * 100, np.uint16)).save(root / "images" / name)
    s = load_scene(root)
    img = dict(zip([c.name for c in s.train_cameras], s.train_images))[name]
    assert img[0, 0].tolist() == [100, 100, 100]


# ----------------------------------------------------------------------------- bad inputs


def _one_error(fn) -> str:
    with pytest.raises(SceneError) as ei:
        fn()
    return str(ei.value)


def test_error_missing_folder(tmp_path):
    msg = _one_error(lambda: load_scene(tmp_path / "nope"))
    assert str(tmp_path / "nope") in msg and "does not exist" in msg


def test_error_missing_sparse(tmp_path):
    _write_images(tmp_path / "images", ["a.png"], 8, 8)
    msg = _one_error(lambda: load_scene(tmp_path))
    assert str(tmp_path) in msg and "sparse" in msg
    (tmp_path / "sparse" / "0").mkdir(parents=True)
    msg = _one_error(lambda: load_scene(tmp_path))
    assert "sparse" in msg and "no COLMAP model" in msg


def test_error_missing_model_file(tmp_path):
    root = make_colmap_scene(tmp_path)
    (root / "sparse" / "0" / "points3D.bin").unlink()
    msg = _one_error(lambda: load_scene(root))
    assert "points3D.bin" in msg


def test_error_unreadable_image(tmp_path):
    root = make_colmap_scene(tmp_path)
    bad = sorted((root / "images").iterdir())[3]
    bad.write_bytes(b"this is not a png")
    msg = _one_error(lambda: load_scene(root))
    assert str(bad) in msg and "cannot read image" in msg


def test_error_truncated_image(tmp_path):
    root = make_colmap_scene(tmp_path, W=64, H=48)
    bad = sorted((root / "images").iterdir())[2]
    bad.write_bytes(bad.read_bytes()[:60])
    msg = _one_error(lambda: load_scene(root))
    assert str(bad) in msg


@pytest.mark.parametrize("model", ["SIMPLE_RADIAL", "OPENCV"])
@pytest.mark.parametrize("ext", [".bin", ".txt"])
def test_distorted_camera_is_undistorted(tmp_path, model, ext):
    root = make_colmap_scene(tmp_path, model=model, ext=ext)
    s = load_scene(root)
    assert model in s.undistortion and "undistorted on load" in s.undistortion
    c = s.train_cameras[0]
    assert tuple(s.train_images[0].shape) == (c.height, c.width, 3)


@pytest.mark.parametrize("ext", [".bin", ".txt"])
def test_error_unsupported_camera_model(tmp_path, ext):
    cams, imgs, pts = _tiny_model()
    cams[1] = ColmapCamera(1, "FOV", 64, 48, np.array([50.0, 50.0, 32.0, 24.0, 0.1]))
    colmap.write_model(tmp_path / "sparse" / "0", cams, imgs, pts, ext=ext)
    _write_images(tmp_path / "images", [im.name for im in imgs.values()], 64, 48)
    msg = _one_error(lambda: load_scene(tmp_path))
    assert f"cameras{ext}" in msg and "FOV" in msg and "undistort" in msg.lower()


def test_missing_image_files_are_skipped_with_one_warning(tmp_path):
    root = make_colmap_scene(tmp_path)
    gone = sorted((root / "images").iterdir())
    gone[4].unlink()
    gone[6].unlink()
    with pytest.warns(UserWarning, match="2 of 10 frame") as rec:
        s = load_scene(root)
    assert len([w for w in rec if "missing" in str(w.message)]) == 1
    assert "images.bin" in str(rec[0].message) and gone[4].name in str(rec[0].message)
    assert len(s.train_cameras) + len(s.test_cameras) == 8
    for p in gone:
        p.unlink(missing_ok=True)
    msg = _one_error(lambda: load_scene(root))
    assert "images.bin" in msg and "none of the 10" in msg


def test_error_corrupt_model(tmp_path):
    root = make_colmap_scene(tmp_path)
    f = root / "sparse" / "0" / "images.bin"
    f.write_bytes(f.read_bytes()[:100])
    msg = _one_error(lambda: load_scene(root))
    assert str(f) in msg and "corrupt" in msg


def test_error_empty_model(tmp_path):
    cams, _, pts = _tiny_model()
    colmap.write_model(tmp_path / "sparse" / "0", cams, {}, pts)
    (tmp_path / "images").mkdir()
    msg = _one_error(lambda: load_scene(tmp_path))
    assert "images.bin" in msg and "no registered images" in msg


def test_error_missing_image_folder(tmp_path):
    root = make_colmap_scene(tmp_path)
    msg = _one_error(lambda: load_scene(root, images="images_8"))
    assert str(root / "images_8") in msg


def test_empty_points_random_init(tmp_path):
    cams, imgs, _ = _tiny_model()
    colmap.write_model(tmp_path / "sparse" / "0", cams, imgs, ColmapPoints.empty())
    _write_images(tmp_path / "images", [im.name for im in imgs.values()], 64, 48)
    with pytest.warns(UserWarning, match="no 3D points"):
        s = load_scene(tmp_path)
    assert s.random_init and len(s.points) == 100_000


# ----------------------------------------------------------------------------- transforms.json


def _c2w_opengl(eye) -> list[list[float]]:
    """Blender/OpenGL camera->world (x right, y up, z back) looking at the origin."""
    R, t = _look_at_w2c(eye)
    c2w = np.eye(4)
    c2w[:3, :3] = R.T
    c2w[:3, 3] = eye
    c2w[:3, 1:3] *= -1  # OpenCV (y down, z forward) -> OpenGL (y up, z back)
    return c2w.tolist()


def _write_blender(root: Path, n_train=5, n_test=3, W=16, H=16, missing=()) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test), ("val", 2)):
        frames = []
        (root / split).mkdir(exist_ok=True)
        for i in range(n):
            az = 2 * math.pi * i / n + (0.3 if split == "test" else 0.0)
            eye = [4 * math.cos(az), 4 * math.sin(az), 2.0]
            frames.append({"file_path": f"./{split}/r_{i}", "rotation": 0.0,
                           "transform_matrix": _c2w_opengl(eye)})
            if f"{split}/r_{i}" in missing:
                continue
            rgba = np.zeros((H, W, 4), np.uint8)
            rgba[..., 1] = 100
            rgba[: H // 2, :, 3] = 255
            Image.fromarray(rgba, "RGBA").save(root / split / f"r_{i}.png")
        (root / f"transforms_{split}.json").write_text(json.dumps(
            {"camera_angle_x": 0.6911112070083618, "frames": frames}))


def test_blender_form(tmp_path):
    _write_blender(tmp_path)
    s = load_scene(tmp_path)
    assert len(s.train_cameras) == 5 and len(s.test_cameras) == 3  # the dataset's own split
    assert all(c.name.startswith("test/") for c in s.test_cameras)
    assert s.white_background and s.random_init
    assert s.points.shape == (100_000, 3)
    assert s.points.min() >= -1.3 and s.points.max() <= 1.3
    assert abs(float(s.colors.mean()) - 0.5 - 0.5 * 0.2820948 / 255) < 1e-3  # near grey
    c = s.train_cameras[0]
    assert c.fx == pytest.approx(0.5 * 16 / math.tan(0.5 * 0.6911112070083618)) and c.fx == c.fy
    assert (c.cx, c.cy) == (8.0, 8.0)
    img = s.train_images[0].numpy()
    assert img[0, 0].tolist() == [0, 100, 0] and img[-1, 0].tolist() == [255, 255, 255]
    # pose: every camera looks at the origin
    for cam in s.train_cameras + s.test_cameras:
        p = cam.viewmat[:3, 3]
        assert p[2] > 0 and abs(float(p[0])) < 1e-4 and abs(float(p[1])) < 1e-4
    assert load_scene(tmp_path, white_background=False).train_images[0][-1, 0].tolist() == [0, 0, 0]
    # deterministic random init
    np.testing.assert_array_equal(load_scene(tmp_path).points, s.points)
    # without the eval split, test views join training (upstream without --eval)
    assert len(load_scene(tmp_path, eval_split=False).train_cameras) == 8


def test_blender_missing_frames_warn_and_skip(tmp_path):
    _write_blender(tmp_path, missing=("train/r_1", "test/r_0"))
    with pytest.warns(UserWarning, match="missing"):
        s = load_scene(tmp_path)
    assert len(s.train_cameras) == 4 and len(s.test_cameras) == 2


def _write_ngp(root: Path, n=9, W=20, H=10, extra=None, frame_extra=None, missing=()) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(n):
        az = 2 * math.pi * i / n
        fr = {"file_path": f"images/f_{i:02d}.jpg",
              "transform_matrix": _c2w_opengl([3 * math.cos(az), 3 * math.sin(az), 1.0])}
        if frame_extra and i in frame_extra:
            fr.update(frame_extra[i])
        frames.append(fr)
        if i not in missing:
            Image.fromarray(np.full((H, W, 3), 7 * i, np.uint8)).save(root / "images" / f"f_{i:02d}.jpg")
    data = {"fl_x": 30.0, "fl_y": 31.0, "cx": 10.5, "cy": 4.5, "w": W, "h": H, "frames": frames}
    data.update(extra or {})
    (root / "transforms.json").write_text(json.dumps(data))


def test_ngp_form(tmp_path):
    _write_ngp(tmp_path, frame_extra={3: {"fl_x": 40.0}})
    s = load_scene(tmp_path)
    assert not s.white_background and s.random_init
    assert [c.name for c in s.test_cameras] == ["images/f_00.jpg", "images/f_08.jpg"]
    cams = {c.name: c for c in s.train_cameras}
    c = cams["images/f_01.jpg"]
    assert (c.fx, c.fy, c.cx, c.cy, c.width, c.height) == (30.0, 31.0, 10.5, 4.5, 20, 10)
    assert cams["images/f_03.jpg"].fx == 40.0
    # random init: inside the (cube around the) camera bounding box
    centers = torch.stack([c.center for c in s.train_cameras]).numpy()
    assert s.points.shape == (100_000, 3)
    assert np.abs(s.points.mean(0) - 0.5 * (centers.min(0) + centers.max(0))).max() < 0.1


def test_ngp_camera_angle_fallback_and_resolution(tmp_path):
    _write_ngp(tmp_path, W=20, H=10)
    data = json.loads((tmp_path / "transforms.json").read_text())
    for k in ("fl_x", "fl_y", "cx", "cy", "w", "h"):
        del data[k]
    data["camera_angle_x"] = 1.0
    (tmp_path / "transforms.json").write_text(json.dumps(data))
    s = load_scene(tmp_path, resolution=2)
    c = s.train_cameras[0]
    assert (c.width, c.height) == (10, 5)
    assert c.fx == pytest.approx(0.5 * 20 / math.tan(0.5) / 2) and c.fy == pytest.approx(c.fx)
    assert (c.cx, c.cy) == (5.0, 2.5)


def test_ngp_missing_images_warn(tmp_path):
    _write_ngp(tmp_path, missing=(2, 5))
    with pytest.warns(UserWarning, match="2 of 9 frame"):
        s = load_scene(tmp_path)
    assert len(s.train_cameras) + len(s.test_cameras) == 7


def test_ngp_all_missing_is_an_error(tmp_path):
    _write_ngp(tmp_path, n=3, missing=(0, 1, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        msg = _one_error(lambda: load_scene(tmp_path))
    assert "transforms.json" in msg


def test_ngp_distortion(tmp_path):
    _write_ngp(tmp_path / "big", extra={"k1": -0.05})
    assert "OPENCV" in load_scene(tmp_path / "big").undistortion
    _write_ngp(tmp_path / "fish", extra={"camera_model": "OPENCV_FISHEYE", "k1": 0.01})
    assert "OPENCV_FISHEYE" in load_scene(tmp_path / "fish").undistortion
    _write_ngp(tmp_path / "equi", extra={"camera_model": "EQUIRECTANGULAR"})
    msg = _one_error(lambda: load_scene(tmp_path / "equi"))
    assert str(tmp_path / "equi" / "transforms.json") in msg and "EQUIRECTANGULAR" in msg


def test_ngp_bad_json(tmp_path):
    (tmp_path / "transforms.json").write_text("{not json")
    msg = _one_error(lambda: load_scene(tmp_path))
    assert "transforms.json" in msg


# ----------------------------------------------------------------------------- shared scenes


@pytest.mark.skipif(not FERN.is_dir(), reason="GS_BENCH_REAL_SCENES has no fern")
def test_fern():
    m = colmap.read_model(colmap.find_sparse_dir(FERN))
    assert len(m.cameras) == 1 and m.cameras[1].model == "PINHOLE"
    assert (m.cameras[1].width, m.cameras[1].height) == (1600, 1200)
    assert len(m.images) == 20 and len(m.points) == 10091
    s = load_scene(FERN, images="images_4")
    assert len(s.test_cameras) == 3 and len(s.train_cameras) == 17
    assert (s.train_cameras[0].width, s.train_cameras[0].height) == (400, 300)
    assert s.train_cameras[0].fx == pytest.approx(1309.119732 / 4, rel=1e-6)
    assert [c.name for c in s.test_cameras] == ["IMG_4026.JPG", "IMG_4034.JPG", "IMG_4042.JPG"]
    assert s.points.shape == (10091, 3) and not s.random_init
    # most SfM points project inside the image, in front of the camera
    cam = s.train_cameras[0]
    pc = torch.from_numpy(s.points) @ cam.viewmat[:3, :3].T + cam.viewmat[:3, 3]
    u = cam.fx * pc[:, 0] / pc[:, 2] + cam.cx
    v = cam.fy * pc[:, 1] / pc[:, 2] + cam.cy
    inside = (pc[:, 2] > 0) & (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
    assert inside.float().mean() > 0.8


@pytest.mark.skipif(not BEER.is_dir(), reason="GS_BENCH_REAL_SCENES has no beer_can")
def test_beer_can():
    s = load_scene(BEER, images="images_4")
    assert (s.train_cameras[0].width, s.train_cameras[0].height) == (180, 320)
    assert len(s.train_cameras) + len(s.test_cameras) == 71 and len(s.test_cameras) == 9
    s2 = load_scene(BEER, resolution=2)
    c = s2.train_cameras[0]
    assert (c.width, c.height) == (360, 640) and tuple(s2.train_images[0].shape) == (640, 360, 3)
    assert c.fx == pytest.approx(1160.6179932 / 2, rel=1e-6)


@pytest.mark.skipif(not BEER.is_dir(), reason="GS_BENCH_REAL_SCENES has no beer_can")
def test_reader_agrees_with_pycolmap():
    pycolmap = pytest.importorskip("pycolmap")
    m = colmap.read_model(BEER / "sparse" / "0", with_tracks=True)
    rec = pycolmap.Reconstruction(str(BEER / "sparse" / "0"))
    assert len(rec.images) == len(m.images) and len(rec.points3D) == len(m.points)
    for iid, im in rec.images.items():
        pose = im.cam_from_world() if callable(im.cam_from_world) else im.cam_from_world
        np.testing.assert_allclose(pose.matrix()[:3, :3], m.images[iid].viewmat()[:3, :3], atol=1e-9)
        np.testing.assert_allclose(pose.translation, m.images[iid].tvec, atol=1e-9)
        assert im.name == m.images[iid].name
    idx = {int(pid): i for i, pid in enumerate(m.points.ids)}
    for pid, p in list(rec.points3D.items())[:200]:
        np.testing.assert_allclose(p.xyz, m.points.xyz[idx[pid]])
        assert p.track.length() == len(m.points.tracks[idx[pid]])


# ----------------------------------------------------------------------------- presets


def test_llff_preset_builds_a_dag_without_downloading(tmp_path):
    import re

    import yaml

    from e2e_helpers import REPO, snakemake
    from gs import pipeline
    from gs.data.download import is_google_drive

    cfg = yaml.safe_load((REPO / "config" / "llff.yaml").read_text())
    ds = cfg["datasets"]["llff"]
    assert pipeline.scenes(cfg, "llff") == ["fern", "flower", "fortress", "horns", "leaves",
                                            "orchids", "room", "trex"]
    assert is_google_drive(ds["url"]) and pipeline.archive_file(ds) == "nerf_llff_data.zip"
    assert pipeline.scene_protocol(cfg, "llff", "fern")["images"] == "images_4"
    path, _ = pipeline.scene_location(cfg, "llff", "trex")
    assert path.endswith("extracted/nerf_llff_data/nerf_llff_data/trex")
    run = snakemake("-n", "--quiet", "rules", "--configfile", str(REPO / "config" / "llff.yaml"),
                    cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", out, flags=re.M))
    assert counts.get("download") == "1" and counts.get("extract") == "1", out
    assert counts.get("prepare_scene") == "8", out
    assert not (tmp_path / ".data").exists()  # a dry run fetches nothing


def test_llff_downscaled_folder_paired_by_sorted_names(tmp_path):
    # images_4 of the LLFF archive renames IMG_xxxx.JPG to image000.png ...
    root = make_colmap_scene(tmp_path, n=10, W=64, H=48, model="SIMPLE_RADIAL")
    (root / "images_4").mkdir()
    for k, p in enumerate(sorted((root / "images").iterdir())):
        Image.open(p).resize((16, 12), Image.BICUBIC).save(root / "images_4" / f"image{k:03d}.png")
    with pytest.warns(UserWarning, match="sorted name"):
        s = load_scene(root, images="images_4")
    full = load_scene(root)
    assert [c.name for c in s.test_cameras] == [c.name for c in full.test_cameras]
    assert Path(s.test_cameras[1].image_path).name == "image008.png"
    assert s.test_cameras[1].name == "img_008.png"


def test_image_names_as_capture_tools_write_them(tmp_path):
    # upper-case extension on disk, name without extension, ./ prefix
    _write_ngp(tmp_path, n=9)
    data = json.loads((tmp_path / "transforms.json").read_text())
    (tmp_path / "images" / "f_01.jpg").rename(tmp_path / "images" / "f_01.JPG")
    data["frames"][1]["file_path"] = "./images/f_01.jpg"
    data["frames"][2]["file_path"] = "images/f_02"
    data["frames"][3]["file_path"] = "./images/f_03.JPG"
    (tmp_path / "transforms.json").write_text(json.dumps(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped
        s = load_scene(tmp_path)
    assert len(s.train_cameras) + len(s.test_cameras) == 9
    paths = {Path(c.image_path).name for c in s.train_cameras}
    assert {"f_01.JPG", "f_02.jpg", "f_03.jpg"} <= paths


# ----------------------------------------------------------------------------- initial scales


def _brute_mean_sq_dist_3nn(xyz: np.ndarray) -> np.ndarray:
    d2 = ((xyz[:, None, :] - xyz[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    return np.sort(d2, axis=1)[:, :3].mean(1)


def test_initial_scales_kdtree_matches_brute_force():
    from gs.model import KNN_KDTREE, GaussianModel, mean_sq_dist_3nn

    xyz = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
    ref = _brute_mean_sq_dist_3nn(xyz.astype(np.float64))
    got = mean_sq_dist_3nn(torch.from_numpy(xyz), KNN_KDTREE).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    m = GaussianModel.from_points(xyz, np.full_like(xyz, 0.5), sh_degree=0)
    np.testing.assert_allclose(m.scales[:, 0].detach().numpy(), np.sqrt(np.maximum(ref, 1e-7)), rtol=1e-5)


def test_initial_scales_selection(monkeypatch):
    import sys
    import types

    import gs.model as gm

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gm.init_knn() == gm.KNN_KDTREE  # no CUDA: the KD-tree, even with simple-knn installed
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "simple_knn", None)  # not installed
    monkeypatch.setitem(sys.modules, "simple_knn._C", None)
    assert gm.init_knn() == gm.KNN_KDTREE
    fake = types.ModuleType("simple_knn._C")
    fake.distCUDA2 = lambda x: None
    monkeypatch.setitem(sys.modules, "simple_knn", types.ModuleType("simple_knn"))
    monkeypatch.setitem(sys.modules, "simple_knn._C", fake)
    assert gm.init_knn() == gm.KNN_SIMPLE


def test_initial_scales_choice_recorded(tmp_path):
    from gs.model import init_knn
    from gs.methods.registry import train_method
    from gs.train.trainer import TrainConfig

    root = make_colmap_scene(tmp_path / "s", n=8, W=16, H=12)
    s = load_scene(root)
    cfg = TrainConfig(iterations=1, backend="torch", device="cpu", progress=False, seed=0)
    stats = train_method(s, "3dgs", {}, tmp_path / "run", cfg).stats
    assert stats["init_knn"] == init_knn()
    assert json.loads((tmp_path / "run" / "train_stats.json").read_text())["init_knn"] == init_knn()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_simple_knn_agrees_with_kdtree():
    pytest.importorskip("simple_knn._C")
    from gs.model import KNN_KDTREE, KNN_SIMPLE, mean_sq_dist_3nn

    # distinct, well-separated nearest neighbours so ties cannot differ between the searches
    xyz = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (5000, 3)).astype(np.float32))
    a = mean_sq_dist_3nn(xyz, KNN_SIMPLE)
    b = mean_sq_dist_3nn(xyz, KNN_KDTREE)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-9)
