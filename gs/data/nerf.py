"""Readers for NeRF-style ``transforms*.json`` datasets.

Two forms are recognised:

- **Blender synthetic** (NeRF-synthetic): ``transforms_train.json`` / ``transforms_test.json``
  (``transforms_val.json`` is ignored, as in 3DGS), a global ``camera_angle_x``, ``file_path``
  usually without extension (``.png`` is tried), RGBA images composited on the background
  (white by default). The dataset's own test split is used.
- **instant-ngp / nerfstudio**: a single ``transforms.json`` with intrinsics ``fl_x``, ``fl_y``,
  ``cx``, ``cy``, ``w``, ``h`` given globally or per frame (``camera_angle_x``/``_y`` as a
  fallback). Distortion coefficients (``k1``..``k4``, ``p1``, ``p2``) are not modelled by a
  3DGS rasterizer: tiny ones (all |k| <= 1e-3) are ignored with a warning, larger ones are an
  error (undistort the images first). Fisheye cameras are an error.

Poses are camera->world in OpenGL/Blender axes (x right, y up, z back); they are turned into
OpenCV world->camera view matrices (3DGS ``readCamerasFromTransforms``: flip the y and z
columns, invert). Frames whose image is missing are skipped with a warning; no frame left is a
:class:`SceneError`.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gs.data.scene import SceneError, ViewSpec

DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
DISTORTION_TOLERANCE = 1e-3
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


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
    return data


def opengl_c2w_to_viewmat(c2w: Any, source: Path, index: int) -> np.ndarray:
    """Blender/OpenGL camera->world (x right, y up, z back) -> OpenCV world->camera."""
    m = np.asarray(c2w, dtype=np.float64)
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4) or not np.isfinite(m).all():
        raise SceneError(f"{source}: frame {index}: transform_matrix must be a finite 4x4 (or 3x4) "
                         f"matrix, got shape {m.shape}")
    m = m.copy()
    m[:3, 1:3] *= -1.0
    try:
        return np.linalg.inv(m)
    except np.linalg.LinAlgError as e:
        raise SceneError(f"{source}: frame {index}: transform_matrix is singular") from e


def resolve_image(root: Path, file_path: str, images: str | None) -> Path | None:
    """The image file of a frame, trying the path as given, then with common extensions."""
    rel = Path(file_path)
    if images is not None:
        parts = list(rel.parts)
        if "images" not in parts:
            raise SceneError(f"{root}: images={images!r} given, but frame path {file_path!r} has no "
                             f"'images' folder to replace")
        parts[parts.index("images")] = images
        rel = Path(*parts)
    p = root / rel
    if p.suffix and p.is_file():
        return p
    for ext in IMAGE_EXTS:
        q = p.with_name(p.name + ext)
        if q.is_file():
            return q
    return p if p.is_file() else None


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, Image.DecompressionBombError) as e:
        raise SceneError(f"{path}: cannot read image ({e})") from e


def _warn_missing(source: Path, missing: list[str]) -> None:
    if missing:
        warnings.warn(f"{source}: {len(missing)} frame(s) skipped because their image is missing: "
                      f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}", stacklevel=3)


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
        fovx = float(data["camera_angle_x"])
        missing = []
        for i, fr in enumerate(data["frames"]):
            if "file_path" not in fr or "transform_matrix" not in fr:
                raise SceneError(f"{src}: frame {i} lacks 'file_path' or 'transform_matrix'")
            img = resolve_image(root, fr["file_path"], images)
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
        _warn_missing(src, missing)
    if not views:
        raise SceneError(f"{root}: no usable frames in transforms_train/test.json")
    if not any(v.split == "train" for v in views):
        raise SceneError(f"{root / 'transforms_train.json'}: no usable training frames")
    return views, files


def _intrinsics(src: Path, i: int, g: dict[str, Any], fr: dict[str, Any],
                img: Path) -> tuple[float, float, float, float, int, int]:
    def get(key: str) -> Any:
        return fr.get(key, g.get(key))

    model = str(get("camera_model") or "").upper()
    if get("is_fisheye") or "FISHEYE" in model or model in ("EQUIRECTANGULAR",):
        raise SceneError(f"{src}: frame {i}: {model or 'fisheye'} camera; 3DGS needs undistorted "
                         f"pinhole images (undistort first, e.g. `colmap image_undistorter`)")
    dist = {k: float(get(k) or 0.0) for k in DISTORTION_KEYS}
    worst = max(abs(v) for v in dist.values())
    if worst > DISTORTION_TOLERANCE:
        raise SceneError(
            f"{src}: frame {i}: distortion coefficients {', '.join(f'{k}={v:g}' for k, v in dist.items() if v)} "
            f"are not supported (3DGS rasterizes an ideal pinhole). Undistort the images first "
            f"(e.g. `colmap image_undistorter` or nerfstudio's undistortion) and zero them.")
    w, h = get("w"), get("h")
    if w is None or h is None:
        w, h = _image_size(img)
    w, h = int(w), int(h)
    fx, fy = get("fl_x"), get("fl_y")
    if fx is None:
        ax = get("camera_angle_x")
        if ax is None:
            raise SceneError(f"{src}: frame {i}: no focal length (fl_x) and no camera_angle_x")
        fx = 0.5 * w / math.tan(0.5 * float(ax))
    if fy is None:
        ay = get("camera_angle_y")
        fy = 0.5 * h / math.tan(0.5 * float(ay)) if ay is not None else fx
    cx, cy = get("cx"), get("cy")
    cx = 0.5 * w if cx is None else float(cx)
    cy = 0.5 * h if cy is None else float(cy)
    return float(fx), float(fy), cx, cy, w, h


def read_ngp(root: Path | str, *, images: str | None = None) -> tuple[list[ViewSpec], list[Path], tuple[np.ndarray, np.ndarray] | None]:
    """Views of an instant-ngp / nerfstudio ``transforms.json`` scene (no split: the loader
    applies the every-n-th rule), plus the initial points of ``ply_file_path`` when present."""
    root = Path(root)
    src = root / "transforms.json"
    data = load_json(src)
    files = [src]
    g = {k: v for k, v in data.items() if k != "frames"}
    small = [(k, float(g.get(k) or 0.0)) for k in DISTORTION_KEYS if g.get(k)]
    views: list[ViewSpec] = []
    missing = []
    tiny_warned = False
    for i, fr in enumerate(data["frames"]):
        if "file_path" not in fr or "transform_matrix" not in fr:
            raise SceneError(f"{src}: frame {i} lacks 'file_path' or 'transform_matrix'")
        img = resolve_image(root, fr["file_path"], images)
        if img is None:
            missing.append(str(fr["file_path"]))
            continue
        fx, fy, cx, cy, w, h = _intrinsics(src, i, g, fr, img)
        if not tiny_warned and (small or any(fr.get(k) for k in DISTORTION_KEYS)):
            warnings.warn(f"{src}: tiny distortion coefficients (|k| <= {DISTORTION_TOLERANCE}) "
                          f"are ignored", stacklevel=2)
            tiny_warned = True
        views.append(ViewSpec(
            name=str(Path(fr["file_path"]).as_posix()), image_path=img,
            viewmat=opengl_c2w_to_viewmat(fr["transform_matrix"], src, i),
            fx=fx, fy=fy, cx=cx, cy=cy, width=w, height=h))
    _warn_missing(src, missing)
    if not views:
        raise SceneError(f"{src}: no usable frames (all {len(data['frames'])} images missing)")
    pts = None
    if data.get("ply_file_path"):
        ply = root / str(data["ply_file_path"])
        pts = _read_ply_points(ply)
        files.append(ply)
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
