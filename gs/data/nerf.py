"""Readers for NeRF-style ``transforms*.json`` datasets.

Two forms are recognised:

- **Blender synthetic** (NeRF-synthetic): ``transforms_train.json`` / ``transforms_test.json``
  (``transforms_val.json`` is ignored, as in 3DGS), a global ``camera_angle_x``, ``file_path``
  usually without extension (``.png`` is tried), RGBA images composited on the background
  (white by default). The dataset's own test split is used.
- **instant-ngp / nerfstudio**: a single ``transforms.json`` with intrinsics ``fl_x``, ``fl_y``,
  ``cx``, ``cy``, ``w``, ``h`` given globally or per frame (``camera_angle_x``/``_y`` as a
  fallback). Distortion is undistorted on load (:mod:`gs.data.undistort`): ``k1 k2 k3 p1 p2``
  are OpenCV's standard model (``camera_model`` absent, ``OPENCV`` or a pinhole name);
  ``is_fisheye`` (instant-ngp) or ``camera_model: OPENCV_FISHEYE`` (nerfstudio) is OpenCV's
  fisheye model with ``k1``..``k4``. A non-zero ``k4`` outside the fisheye model (nerfstudio's
  r^8 term, which OpenCV's model lacks) and other camera models (equirectangular, FISHEYE624)
  are errors.

Every value is type-checked: a wrong type is a :class:`SceneError` naming the file and frame.

Poses are camera->world in OpenGL/Blender axes (x right, y up, z back); they are turned into
OpenCV world->camera view matrices (3DGS ``readCamerasFromTransforms``: flip the y and z
columns, invert); the rotation must be proper and orthonormal. Frame paths may start with
``./``, lack the extension or differ in its case. Frames whose image is missing are skipped with
one warning that counts them; a split left without frames is a :class:`SceneError`.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gs.data.scene import ImageFinder, SceneError, ViewSpec, check_intrinsics, check_rotation, warn_missing
from gs.data.undistort import Lens, make_lens

DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
PINHOLE_NAMES = ("", "PINHOLE", "SIMPLE_PINHOLE", "OPENCV")


def is_blender(root: Path) -> bool:
    return (root / "transforms_train.json").is_file()


def is_ngp(root: Path) -> bool:
    return (root / "transforms.json").is_file()


def load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SceneError(f"{path}: cannot parse transforms JSON ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise SceneError(f"{path}: not a NeRF transforms file (no 'frames' list)")
    for i, fr in enumerate(data["frames"]):
        if not isinstance(fr, dict):
            raise SceneError(f"{path}: frame {i} is a {type(fr).__name__}, not an object")
        if "file_path" not in fr or "transform_matrix" not in fr:
            raise SceneError(f"{path}: frame {i} lacks 'file_path' or 'transform_matrix'")
        if not isinstance(fr["file_path"], str) or not fr["file_path"]:
            raise SceneError(f"{path}: frame {i}: 'file_path' must be a non-empty string, "
                             f"got {fr['file_path']!r}")
    return data


def number(where: str, key: str, value: Any) -> float:
    """``value`` as a finite float; SceneError naming ``where`` and ``key`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SceneError(f"{where}: '{key}' must be a finite number, got {value!r}")
    return float(value)


def integer(where: str, key: str, value: Any) -> int:
    v = number(where, key, value)
    if v != int(v):
        raise SceneError(f"{where}: '{key}' must be an integer, got {value!r}")
    return int(v)


def opengl_c2w_to_viewmat(c2w: Any, source: Path, index: int) -> np.ndarray:
    """Blender/OpenGL camera->world (x right, y up, z back) -> OpenCV world->camera."""
    try:
        m = np.asarray(c2w, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise SceneError(f"{source}: frame {index}: transform_matrix must be a 4x4 (or 3x4) matrix "
                         f"of numbers ({e})") from e
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4) or not np.isfinite(m).all():
        raise SceneError(f"{source}: frame {index}: transform_matrix must be a finite 4x4 (or 3x4) "
                         f"matrix, got shape {m.shape}")
    check_rotation(f"{source}: frame {index}: transform_matrix", m[:3, :3])
    m = m.copy()
    m[:3, 1:3] *= -1.0
    try:
        return np.linalg.inv(m)
    except np.linalg.LinAlgError as e:
        raise SceneError(f"{source}: frame {index}: transform_matrix is singular") from e


def resolve_image(root: Path, file_path: str, images: str | None,
                  finder: ImageFinder | None = None) -> Path | None:
    """The image file of a frame (``./`` prefixes, missing or differently cased extensions
    accepted); ``images`` replaces the ``images`` folder of the path."""
    rel = Path(file_path)
    if images is not None:
        parts = list(rel.parts)
        if "images" not in parts:
            raise SceneError(f"{root}: images={images!r} given, but frame path {file_path!r} has no "
                             f"'images' folder to replace")
        parts[parts.index("images")] = images
        rel = Path(*parts)
    return (finder or ImageFinder()).find(root, str(rel))


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, Image.DecompressionBombError) as e:
        raise SceneError(f"{path}: cannot read image ({e})") from e


def read_blender(root: Path | str, *, images: str | None = None) -> tuple[list[ViewSpec], list[Path]]:
    """Views of a Blender-synthetic scene (train and test split from the dataset)."""
    root = Path(root)
    views: list[ViewSpec] = []
    files: list[Path] = []
    for split in ("train", "test"):
        src = root / f"transforms_{split}.json"
        if not src.is_file():
            if split == "test":
                warnings.warn(f"{src}: missing; the scene has no test views", stacklevel=2)
                continue
            raise SceneError(f"{src}: missing")
        data = load_json(src)
        files.append(src)
        if "camera_angle_x" not in data:
            raise SceneError(f"{src}: no 'camera_angle_x' (horizontal field of view)")
        fovx = number(str(src), "camera_angle_x", data["camera_angle_x"])
        if not 0 < fovx < math.pi:
            raise SceneError(f"{src}: 'camera_angle_x' must be in (0, pi) radians, got {fovx!r}")
        missing = []
        finder = ImageFinder()
        for i, fr in enumerate(data["frames"]):
            img = resolve_image(root, fr["file_path"], images, finder)
            if img is None:
                missing.append(str(fr["file_path"]))
                continue
            w, h = _image_size(img)
            # 3DGS: focal from fovx and the image width; fovy derived from the same focal.
            f = 0.5 * w / math.tan(0.5 * fovx)
            views.append(ViewSpec(
                name=f"{split}/{Path(fr['file_path']).name}", image_path=img,
                viewmat=opengl_c2w_to_viewmat(fr["transform_matrix"], src, i),
                fx=f, fy=f, cx=0.5 * w, cy=0.5 * h, width=w, height=h, split=split))
        if missing and len(missing) == len(data["frames"]):
            raise SceneError(f"{src}: no usable frames: all {len(missing)} images are missing")
        warn_missing(src, missing, len(data["frames"]))
    if not views:
        raise SceneError(f"{root}: no usable frames in transforms_train/test.json")
    if not any(v.split == "train" for v in views):
        raise SceneError(f"{root / 'transforms_train.json'}: no usable training frames")
    return views, files


def _lens(where: str, get: Any) -> Lens | None:
    """The frame's distortion (None for a pinhole), from instant-ngp or nerfstudio keys."""
    model = get("camera_model")
    if model is not None and not isinstance(model, str):
        raise SceneError(f"{where}: 'camera_model' must be a string, got {model!r}")
    model = (model or "").upper()
    fisheye = get("is_fisheye")
    if fisheye is not None and not isinstance(fisheye, bool):
        raise SceneError(f"{where}: 'is_fisheye' must be true or false, got {fisheye!r}")
    k = {key: 0.0 if get(key) is None else number(where, key, get(key)) for key in DISTORTION_KEYS}
    if fisheye or model == "OPENCV_FISHEYE":
        if k["p1"] or k["p2"]:
            raise SceneError(f"{where}: a fisheye camera with tangential p1/p2 is not a model "
                             f"OpenCV's fisheye undistortion has")
        return make_lens("OPENCV_FISHEYE", [k["k1"], k["k2"], k["k3"], k["k4"]], "OPENCV_FISHEYE")
    if model not in PINHOLE_NAMES:
        raise SceneError(f"{where}: camera_model {model} is not supported (pinhole, OPENCV or "
                         f"OPENCV_FISHEYE); undistort the images first (e.g. `colmap "
                         f"image_undistorter`)")
    if k["k4"]:
        raise SceneError(f"{where}: k4={k['k4']:g} without a fisheye model (nerfstudio's r^8 term) "
                         f"is not in OpenCV's model; undistort the images first")
    return make_lens("OPENCV", [k["k1"], k["k2"], k["p1"], k["p2"], k["k3"]], model or "OPENCV")


def _intrinsics(src: Path, i: int, g: dict[str, Any], fr: dict[str, Any],
                img: Path) -> tuple[float, float, float, float, int, int, Lens | None]:
    def get(key: str) -> Any:
        return fr.get(key, g.get(key))

    where = f"{src}: frame {i}"
    lens = _lens(where, get)
    w, h = get("w"), get("h")
    if w is None or h is None:
        w, h = _image_size(img)
    w, h = integer(where, "w", w), integer(where, "h", h)
    fx, fy = get("fl_x"), get("fl_y")
    if fx is None:
        ax = get("camera_angle_x")
        if ax is None:
            raise SceneError(f"{where}: no focal length (fl_x) and no camera_angle_x")
        ax = number(where, "camera_angle_x", ax)
        if not 0 < ax < math.pi:
            raise SceneError(f"{where}: 'camera_angle_x' must be in (0, pi) radians, got {ax!r}")
        fx = 0.5 * w / math.tan(0.5 * ax)
    fx = number(where, "fl_x", fx)
    if fy is None:
        ay = get("camera_angle_y")
        if ay is not None:
            ay = number(where, "camera_angle_y", ay)
            if not 0 < ay < math.pi:
                raise SceneError(f"{where}: 'camera_angle_y' must be in (0, pi) radians, got {ay!r}")
        fy = 0.5 * h / math.tan(0.5 * ay) if ay is not None else fx
    fy = number(where, "fl_y", fy)
    cx, cy = get("cx"), get("cy")
    cx = 0.5 * w if cx is None else number(where, "cx", cx)
    cy = 0.5 * h if cy is None else number(where, "cy", cy)
    check_intrinsics(where, fx, fy, cx, cy, w, h)
    return fx, fy, cx, cy, w, h, lens


def read_ngp(root: Path | str, *, images: str | None = None) -> tuple[list[ViewSpec], list[Path], tuple[np.ndarray, np.ndarray] | None]:
    """Views of an instant-ngp / nerfstudio ``transforms.json`` scene (no split: the loader
    applies the every-n-th rule), plus the initial points of ``ply_file_path`` when present."""
    root = Path(root)
    src = root / "transforms.json"
    data = load_json(src)
    files = [src]
    g = {k: v for k, v in data.items() if k != "frames"}
    views: list[ViewSpec] = []
    missing = []
    finder = ImageFinder()
    for i, fr in enumerate(data["frames"]):
        img = resolve_image(root, fr["file_path"], images, finder)
        if img is None:
            missing.append(str(fr["file_path"]))
            continue
        fx, fy, cx, cy, w, h, lens = _intrinsics(src, i, g, fr, img)
        views.append(ViewSpec(
            name=str(Path(fr["file_path"]).as_posix()), image_path=img,
            viewmat=opengl_c2w_to_viewmat(fr["transform_matrix"], src, i),
            fx=fx, fy=fy, cx=cx, cy=cy, width=w, height=h, lens=lens))
    if not views:
        raise SceneError(f"{src}: no usable frames (all {len(data['frames'])} images missing)")
    warn_missing(src, missing, len(data["frames"]))
    pts = None
    ply = data.get("ply_file_path")
    if ply:
        if not isinstance(ply, str):
            raise SceneError(f"{src}: 'ply_file_path' must be a string, got {ply!r}")
        pts = _read_ply_points(root / ply)
        files.append(root / ply)
    return views, files, pts


def _read_ply_points(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        from plyfile import PlyData

        v = PlyData.read(str(path))["vertex"]
        xyz = np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float32)
        names = v.data.dtype.names
        if all(c in names for c in ("red", "green", "blue")):
            rgb = np.stack([v["red"], v["green"], v["blue"]], 1).astype(np.float32) / 255.0
        else:
            rgb = np.full_like(xyz, 0.5)
    except Exception as e:  # plyfile raises many kinds of errors on bad input
        raise SceneError(f"{path}: cannot read the initial point cloud ({e})") from e
    return xyz, rgb.astype(np.float32)
