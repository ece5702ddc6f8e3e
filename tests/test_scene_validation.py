"""Scene validation on load: bad poses, intrinsics, binary count fields and JSON types give one
SceneError naming the file and the record, never a black view, a traceback or a huge allocation."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from gs.data import SceneError, load_scene
from gs.data import colmap
from gs.data.colmap import ColmapCamera
from tests.test_data import _write_images, _write_ngp, make_colmap_scene, _tiny_model


def _one_error(fn) -> str:
    with pytest.raises(SceneError) as ei:
        fn()
    return str(ei.value)


def _scene_with(tmp_path, *, image=None, camera=None, ext=".bin"):
    cams, imgs, pts = _tiny_model()
    if image is not None:
        image(imgs[3])
    if camera is not None:
        cams[1] = camera
    colmap.write_model(tmp_path / "sparse" / "0", cams, imgs, pts, ext=ext)
    _write_images(tmp_path / "images", [im.name for im in imgs.values()], 64, 48)
    return tmp_path, imgs[3]


@pytest.mark.parametrize("ext", [".bin", ".txt"])
@pytest.mark.parametrize("bad", ["nan_quat", "zero_quat", "nan_t", "inf_t"])
def test_bad_pose_is_an_error(tmp_path, bad, ext):
    def edit(im):
        if bad == "nan_quat":
            im.qvec = np.array([np.nan, 0.0, 0.0, 0.0])
        elif bad == "zero_quat":
            im.qvec = np.zeros(4)
        elif bad == "nan_t":
            im.tvec = np.array([0.0, np.nan, 1.0])
        else:
            im.tvec = np.array([np.inf, 0.0, 1.0])

    root, im = _scene_with(tmp_path, image=edit, ext=ext)
    msg = _one_error(lambda: load_scene(root))
    assert f"images{ext}" in msg and f"image {im.id}" in msg and im.name in msg


@pytest.mark.parametrize("ext", [".bin", ".txt"])
@pytest.mark.parametrize("params,width,word", [
    ([0.0, 52.0, 32.0, 24.0], 64, "focal"),
    ([-50.0, 52.0, 32.0, 24.0], 64, "focal"),
    ([np.nan, 52.0, 32.0, 24.0], 64, "finite"),
    ([50.0, 52.0, np.inf, 24.0], 64, "finite"),
    ([50.0, 52.0, 32.0, 24.0], 0, "width"),
    ([50.0, 52.0, 32.0, 24.0], 1 << 40, "width"),
])
def test_bad_intrinsics_are_an_error(tmp_path, params, width, word, ext):
    root, _ = _scene_with(tmp_path, camera=ColmapCamera(1, "PINHOLE", width, 48, np.array(params)), ext=ext)
    msg = _one_error(lambda: load_scene(root))
    assert f"cameras{ext}" in msg and "camera 1" in msg and word in msg


def test_random_points3d_bin_names_the_file(tmp_path):
    root = make_colmap_scene(tmp_path)
    f = root / "sparse" / "0" / "points3D.bin"
    f.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    msg = _one_error(lambda: load_scene(root))
    assert str(f) in msg and "corrupt" in msg


@pytest.mark.parametrize("stem", ["cameras", "images", "points3D"])
def test_huge_count_field_is_refused_before_allocating(tmp_path, stem):
    root = make_colmap_scene(tmp_path)
    f = root / "sparse" / "0" / f"{stem}.bin"
    f.write_bytes(struct.pack("<Q", 1 << 40) + f.read_bytes()[8:])
    msg = _one_error(lambda: load_scene(root))
    assert str(f) in msg and str(1 << 40) in msg


def test_huge_points2d_count_is_refused(tmp_path):
    root = make_colmap_scene(tmp_path)
    f = root / "sparse" / "0" / "images.bin"
    buf = bytearray(f.read_bytes())
    name_end = buf.index(b"\x00", 8 + 64)
    buf[name_end + 1:name_end + 9] = struct.pack("<Q", 1 << 40)
    f.write_bytes(bytes(buf))
    msg = _one_error(lambda: colmap.read_images_binary(f, with_points2d=True))
    assert str(f) in msg and "points2D" in msg


# ----------------------------------------------------------------------------- transforms.json


@pytest.mark.parametrize("extra,frame_extra,words", [
    ({"fl_x": "abc"}, None, ["fl_x", "frame 0"]),
    ({"fl_x": 0.0}, None, ["focal", "frame 0"]),
    ({"fl_x": None, "camera_angle_x": 0.0}, None, ["camera_angle_x"]),
    ({"w": "wide"}, None, ["'w'"]),
    ({"w": 20.5}, None, ["'w'"]),
    ({"h": -10}, None, ["height"]),
    ({"cx": [1]}, None, ["cx"]),
    ({"k1": "0.1"}, None, ["k1"]),
    ({"is_fisheye": "yes"}, None, ["is_fisheye"]),
    ({"camera_model": 3}, None, ["camera_model"]),
    ({"camera_model": "FISHEYE624"}, None, ["FISHEYE624"]),
    ({"k4": 0.01}, None, ["k4"]),
    ({"ply_file_path": 7}, None, ["ply_file_path"]),
    (None, {2: {"fl_y": True}}, ["fl_y", "frame 2"]),
    (None, {2: {"file_path": 5}}, ["file_path", "frame 2"]),
    (None, {2: {"transform_matrix": "eye"}}, ["transform_matrix", "frame 2"]),
    (None, {2: {"transform_matrix": [[1, 0], [0, 1]]}}, ["transform_matrix", "frame 2"]),
    (None, {2: {"transform_matrix": [[np.nan] * 4] * 4}}, ["transform_matrix", "frame 2"]),
    (None, {2: {"transform_matrix": (np.diag([2.0, 2, 2, 1])).tolist()}}, ["rotation", "frame 2"]),
    (None, {2: {"transform_matrix": (np.diag([1.0, 1, -1, 1])).tolist()}}, ["rotation", "frame 2"]),
])
def test_transforms_wrong_values_name_file_and_frame(tmp_path, extra, frame_extra, words):
    _write_ngp(tmp_path, extra=extra, frame_extra=frame_extra)
    if extra and extra.get("fl_x", 1) is None:  # drop the key, keep the angle
        data = json.loads((tmp_path / "transforms.json").read_text())
        del data["fl_x"]
        (tmp_path / "transforms.json").write_text(json.dumps(data))
    msg = _one_error(lambda: load_scene(tmp_path))
    assert str(tmp_path / "transforms.json") in msg
    for w in words:
        assert w in msg, (w, msg)


def test_transforms_frame_that_is_not_an_object(tmp_path):
    _write_ngp(tmp_path)
    data = json.loads((tmp_path / "transforms.json").read_text())
    data["frames"][1] = [1, 2]
    (tmp_path / "transforms.json").write_text(json.dumps(data))
    msg = _one_error(lambda: load_scene(tmp_path))
    assert str(tmp_path / "transforms.json") in msg and "frame 1" in msg
