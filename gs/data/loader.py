"""``load_scene``: one entry point for COLMAP, Blender and instant-ngp datasets.

Protocol (3DGS ``scene/dataset_readers.py`` and ``utils/camera_utils.py``; see
``methods/baseline-3dgs.md``, "Data and evaluation protocol"):

- Split: image names sorted, view ``i`` is a test view when ``i % test_every == 0`` (the
  "llffhold 8" rule) for COLMAP and instant-ngp data; Blender scenes use their own
  ``transforms_test.json``. ``eval_split=False`` puts every view into training (for Blender:
  train + test, as upstream without ``--eval``).
- ``images`` picks the image folder (``images_4`` ...); intrinsics are rescaled per axis to the
  size of the image actually found on disk (what upstream does through the field of view).
- ``resolution=-1``: when the longest side of an image exceeds ``max_side`` it is downscaled so
  the longest side equals ``max_side`` (upstream tests the width only; the two agree for
  landscape images, and DESIGN.md states the rule for the longest side). ``resolution=r > 0``
  divides both sides by ``r`` (rounded, as upstream); a value above 16 is read as the target
  width in pixels, as upstream reads any ``-r`` other than 1/2/4/8.
- Resampling uses PIL ``BICUBIC``, which is what upstream's ``PIL.Image.resize(size)`` does by
  default (Pillow >= 7). Images with alpha are composited on the background colour first and
  truncated to 8 bit (upstream ``(arr * 255).astype(uint8)``).
- Distorted cameras (COLMAP SIMPLE_RADIAL, RADIAL, OPENCV, FULL_OPENCV, OPENCV_FISHEYE;
  transforms.json ``k1 k2 k3 p1 p2`` / fisheye ``k1..k4``) are undistorted on load, train and
  test views alike, at the size of the image on disk, before the resolution rule
  (:mod:`gs.data.undistort`); ``Scene.undistortion`` records it (scene.json, metrics protocol).
- Frames whose image is missing are skipped with one warning that counts them; a dataset left
  without views is an error. Image names may lack the extension or differ in its case; LLFF's
  renamed ``images_N`` folders are paired with the model's sorted names.
- Images are RGB uint8 (H,W,3) CPU tensors; ``extent`` = :func:`camera_extent` of the training
  cameras; ``input_files`` lists every file read (model files and images) for provenance.

Datasets without SfM points get a random init (``Scene.random_init``): 100,000 points uniform in
[-1.3, 1.3]^3 for Blender scenes (upstream), otherwise uniform in the cube centred on the
bounding box of the camera centres with half side = the largest half-extent of that box (a
cube, so forward-facing captures whose centres lie on a plane still get depth); colours near
grey (SH2RGB(U(0,1)/255)). The random init is seeded (``seed``), so loading is deterministic.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gs.camera import Camera
from gs.data import colmap, nerf, undistort
from gs.data.scene import (NO_UNDISTORTION, ImageFinder, Scene, SceneError, ViewSpec, camera_extent,
                           random_init_points, warn_missing)

RANDOM_INIT_POINTS = 100_000
BLENDER_INIT_HALF_SIDE = 1.3
MAX_DIVISOR = 16  # resolution values above this are a target width (upstream `-r 1000`)


def detect_format(root: Path) -> str:
    """'blender', 'ngp' or 'colmap' for a dataset folder (SceneError when none fits)."""
    if not root.exists():
        raise SceneError(f"{root}: dataset folder does not exist")
    if not root.is_dir():
        raise SceneError(f"{root}: not a folder (expected a COLMAP or transforms.json dataset)")
    if nerf.is_blender(root):
        return "blender"
    if nerf.is_ngp(root):
        return "ngp"
    if (root / "sparse").is_dir() or (root / "cameras.bin").is_file() or (root / "cameras.txt").is_file():
        return "colmap"
    raise SceneError(f"{root}: no COLMAP model (sparse/0/ or sparse/) and no transforms.json / "
                     f"transforms_train.json: not a dataset folder this loader knows")


def target_size(width: int, height: int, resolution: float, max_side: int) -> tuple[int, int]:
    """Evaluation size of an image of ``width`` x ``height`` under the resolution rule."""
    if resolution == -1:
        longest = max(width, height)
        if max_side > 0 and longest > max_side:
            s = longest / max_side
            return max(1, round(width / s)), max(1, round(height / s))
        return width, height
    if resolution <= 0:
        raise ValueError(f"resolution must be -1 or a positive factor, got {resolution}")
    if resolution > MAX_DIVISOR:  # upstream: any other -r value is the target width in pixels
        s = width / resolution
        return max(1, round(width / s)), max(1, round(height / s))
    return max(1, round(width / resolution)), max(1, round(height / resolution))


def _read_rgb(path: Path, background: tuple[float, float, float]) -> np.ndarray:
    """Decode an image to RGB uint8 (H,W,3), compositing alpha over ``background``."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
                a = rgba[..., 3:4]
                bg = np.asarray(background, np.float32)
                arr = rgba[..., :3] * a + bg * (1.0 - a)
                out = Image.fromarray((arr * 255.0).astype(np.uint8), "RGB")
            elif im.mode.startswith("I;16") or im.mode == "I":  # 16-bit grey
                a16 = np.asarray(im, dtype=np.float64)
                a8 = np.clip(np.round(a16 / 257.0), 0, 255).astype(np.uint8)
                out = Image.fromarray(a8, "L").convert("RGB")
            else:
                out = im.convert("RGB")
            return np.asarray(out, dtype=np.uint8).copy()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise SceneError(f"{path}: cannot read image ({type(e).__name__}: {e})") from e


def _disk_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise SceneError(f"{path}: cannot read image ({type(e).__name__}: {e})") from e


def _resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (arr.shape[1], arr.shape[0]) == size:
        return arr
    return np.array(Image.fromarray(arr, "RGB").resize(size, Image.BICUBIC), dtype=np.uint8)


def _load_views(views: list[ViewSpec], resolution: float, max_side: int,
                background: tuple[float, float, float]) -> tuple[list[Camera], list[torch.Tensor], set[str], set[str]]:
    """Cameras and images of ``views`` at evaluation resolution (decoded in threads); distorted
    views are remapped onto their pinhole camera at the size found on disk, then resized."""
    notes: set[str] = set()
    undistorted: set[str] = set()
    odd: list[str] = []
    undistorters: dict[tuple, undistort.Undistorter] = {}

    def one(v: ViewSpec) -> tuple[Camera, torch.Tensor]:
        dw, dh = _disk_size(v.image_path)
        if abs(dw / dh - v.width / v.height) > 0.01 * v.width / v.height:
            odd.append(f"{v.image_path} is {dw}x{dh}, its camera {v.width}x{v.height}")
        sx, sy = dw / v.width, dh / v.height
        fx, fy, cx, cy = v.fx * sx, v.fy * sy, v.cx * sx, v.cy * sy
        arr = _read_rgb(v.image_path, background)
        if (arr.shape[1], arr.shape[0]) != (dw, dh):
            raise SceneError(f"{v.image_path}: decoded size differs from its header")
        if v.lens is not None:
            key = (v.lens, fx, fy, cx, cy, dw, dh)
            if key not in undistorters:  # shared by the views of one camera (a race only repeats work)
                try:
                    undistorters[key] = undistort.build_undistorter(v.lens, fx, fy, cx, cy, dw, dh)
                except ValueError as e:
                    raise SceneError(f"{v.image_path}: cannot undistort: {e}") from e
            u = undistorters[key]
            arr = u(arr)
            fx, fy, cx, cy, dw, dh = u.fx, u.fy, u.cx, u.cy, u.width, u.height
            undistorted.add(u.describe())
        tw, th = target_size(dw, dh, resolution, max_side)
        sx, sy = tw / dw, th / dh
        arr = _resize(arr, (tw, th))
        notes.add(f"{dw}x{dh}->{tw}x{th}")
        cam = Camera(torch.tensor(v.viewmat, dtype=torch.float32), fx * sx, fy * sy,
                     cx * sx, cy * sy, tw, th, name=v.name, image_path=str(v.image_path))
        return cam, torch.from_numpy(np.ascontiguousarray(arr))

    workers = max(1, min(8, os.cpu_count() or 1, len(views)))
    if workers == 1:
        out = [one(v) for v in views]
    else:
        with ThreadPoolExecutor(workers) as ex:
            out = list(ex.map(one, views))
    if odd:
        warnings.warn(f"{len(odd)} image(s) differ in aspect ratio from their camera model "
                      f"(intrinsics scaled per axis): {'; '.join(sorted(odd)[:3])}"
                      f"{' ...' if len(odd) > 3 else ''}", stacklevel=3)
    return [c for c, _ in out], [i for _, i in out], notes, undistorted


def _pair_by_order(img_dir: Path, names: list[str], finder: ImageFinder, source: Path) -> dict[str, Path] | None:
    """LLFF's downscaled folders (``images_4``) rename the images (``image000.png``); like
    NeRF's LLFF loader, pair the sorted model names with the sorted files when no name matches
    and the counts agree."""
    files = finder.images_in(img_dir)
    if len(files) != len(names) or not files:
        return None
    warnings.warn(f"{img_dir}: no file is named as in {source}; the {len(names)} images are "
                  f"paired with the {len(files)} files by sorted name (LLFF's downscaled folders)",
                  stacklevel=4)
    return dict(zip(sorted(names), files))


def _colmap_views(root: Path, images: str) -> tuple[list[ViewSpec], np.ndarray, np.ndarray, list[Path]]:
    sparse = colmap.find_sparse_dir(root)
    model = colmap.read_model(sparse)
    cams_file, imgs_file = model.files[0], model.files[1]
    if not model.images:
        raise SceneError(f"{imgs_file}: the COLMAP model has no registered images")
    img_dir = root / images
    if not img_dir.is_dir():
        raise SceneError(f"{img_dir}: image folder does not exist")
    intr: dict[int, tuple] = {}  # cameras checked as images use them (an unused one may be odd)
    finder = ImageFinder()
    found = {im.name: finder.find(img_dir, im.name) for im in model.images.values()}
    if not any(found.values()):
        found = _pair_by_order(img_dir, list(found), finder, imgs_file) or found
    views, missing = [], []
    for im in sorted(model.images.values(), key=lambda m: m.name):
        colmap.check_image(im, imgs_file)
        cam = model.cameras.get(im.camera_id)
        if cam is None:
            raise SceneError(f"{imgs_file}: image {im.id} ({im.name!r}) refers to camera "
                             f"{im.camera_id}, which {cams_file} does not define")
        if cam.id not in intr:
            intr[cam.id] = colmap.camera_intrinsics(cam, cams_file)
        fx, fy, cx, cy, lens = intr[cam.id]
        p = found[im.name]
        if p is None:
            missing.append(im.name)
            continue
        views.append(ViewSpec(im.name, p, im.viewmat(), fx, fy, cx, cy, cam.width, cam.height, lens=lens))
    if not views:
        raise SceneError(f"{img_dir}: none of the {len(model.images)} images listed in {imgs_file} "
                         f"is on disk")
    warn_missing(imgs_file, missing, len(model.images), img_dir)
    pts = model.points
    return views, pts.xyz.astype(np.float32), (pts.rgb.astype(np.float32) / 255.0), list(model.files)


def _split(views: list[ViewSpec], fmt: str, test_every: int, eval_split: bool) -> tuple[list[ViewSpec], list[ViewSpec]]:
    if fmt == "blender":
        train = sorted((v for v in views if v.split == "train"), key=lambda v: v.name)
        test = sorted((v for v in views if v.split == "test"), key=lambda v: v.name)
        return (train, test) if eval_split else (train + test, [])
    views = sorted(views, key=lambda v: v.name)
    if not eval_split or test_every <= 0:
        return views, []
    train = [v for i, v in enumerate(views) if i % test_every != 0]
    test = [v for i, v in enumerate(views) if i % test_every == 0]
    if not train:
        raise SceneError(f"{views[0].image_path.parent}: only {len(views)} view(s): the every-"
                         f"{test_every}th split leaves no training view")
    return train, test


def load_scene(path: str | os.PathLike, *, images: str | None = None, resolution: float = -1,
               max_side: int = 1600, test_every: int = 8, white_background: bool | None = None,
               eval_split: bool = True, seed: int = 0) -> Scene:
    """Read a dataset folder (COLMAP, Blender ``transforms_*.json`` or instant-ngp
    ``transforms.json``, detected automatically) into a :class:`Scene`.

    ``images``: image folder for COLMAP (default ``images``; e.g. ``images_4``), or the folder
    that replaces ``images`` in the frame paths of transforms datasets. ``white_background``:
    None = white for Blender scenes, black otherwise. ``seed`` seeds the random init of
    datasets without SfM points. Raises :class:`SceneError` naming the offending file.
    """
    root = Path(path)
    fmt = detect_format(root)
    if white_background is None:
        white_background = fmt == "blender"
    bg = (1.0, 1.0, 1.0) if white_background else (0.0, 0.0, 0.0)
    pts = cols = None
    if fmt == "colmap":
        folder = images or "images"
        views, pts, cols, files = _colmap_views(root, folder)
    elif fmt == "blender":
        folder = images or "."  # frame paths name their own folders (train/, test/)
        views, files = nerf.read_blender(root, images=images)
    else:
        folder = images or "images"
        views, files, init = nerf.read_ngp(root, images=images)
        if init is not None:
            pts, cols = init
    train_v, test_v = _split(views, fmt, test_every, eval_split)
    train_cams, train_imgs, notes, und = _load_views(train_v, resolution, max_side, bg)
    test_cams, test_imgs, notes2, und2 = (_load_views(test_v, resolution, max_side, bg) if test_v
                                          else ([], [], set(), set()))
    extent = camera_extent(train_cams)

    random_init = False
    rng = np.random.default_rng(seed)
    if fmt == "blender" and pts is None:
        h = BLENDER_INIT_HALF_SIDE
        pts, cols = random_init_points(RANDOM_INIT_POINTS, np.full(3, -h), np.full(3, h), rng)
        random_init = True
    elif pts is None or len(pts) == 0:
        if fmt == "colmap":
            warnings.warn(f"{root}: the COLMAP model has no 3D points; using a random init",
                          stacklevel=2)
        centers = torch.stack([c.center for c in train_cams]).double().numpy()
        lo, hi = centers.min(0), centers.max(0)
        mid, half = 0.5 * (lo + hi), max(0.5 * float((hi - lo).max()), 1e-3)
        pts, cols = random_init_points(RANDOM_INIT_POINTS, mid - half, mid + half, rng)
        random_init = True

    input_files = sorted(set(files) | {Path(c.image_path) for c in train_cams + test_cams})
    sizes = sorted(notes | notes2)
    und_all = sorted(und | und2)
    undistortion = NO_UNDISTORTION if not und_all else (
        f"undistorted on load to pinhole: {', '.join(und_all[:3])}{' ...' if len(und_all) > 3 else ''}; "
        f"focal kept, cropped to valid pixels, principal point at its relative position; "
        f"{undistort.INTERPOLATION}, then the resolution rule; test views too")
    note = (f"{fmt}, folder {folder}, resolution {resolution}"
            f"{f' (max side {max_side})' if resolution == -1 else ''}: "
            f"{', '.join(sizes[:3])}{' ...' if len(sizes) > 3 else ''}; "
            f"split {'dataset test split' if fmt == 'blender' else f'every {test_every}th of sorted names'}"
            f"{'' if eval_split else ' disabled (all views train)'}; resize PIL bicubic")
    return Scene(
        name=root.resolve().name, source=root, train_cameras=train_cams, train_images=train_imgs,
        test_cameras=test_cams, test_images=test_imgs,
        points=np.ascontiguousarray(pts, np.float32), colors=np.ascontiguousarray(cols, np.float32),
        extent=extent, white_background=bool(white_background), random_init=random_init,
        image_folder=folder, resolution_note=note, undistortion=undistortion, input_files=input_files)
