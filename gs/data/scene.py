"""Scene: what every reader returns and every trainer, renderer and evaluator consumes."""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gs.camera import Camera
from gs.data.undistort import Lens

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".exr")
MAX_IMAGE_SIDE = 1 << 16  # larger "images" are corrupt records, not captures
NO_UNDISTORTION = "none (pinhole cameras)"


class SceneError(ValueError):
    """A dataset folder that cannot be read; the message names the file and the problem."""


@dataclass
class Scene:
    """Cameras and images of one scene, already split and at evaluation resolution.

    Images are uint8 (H,W,3) tensors on the CPU (moved to the training device once by the
    Trainer); cameras match their image sizes. ``points``/``colors`` (P,3) float32, colours in
    [0,1], are the SfM points (or the random init when the dataset has none, flagged by
    ``random_init``). ``extent`` = 1.1 x max distance of the training camera centres from
    their centroid (the NeRF++ normalisation of 3DGS). ``undistortion`` records how distorted
    cameras were turned into pinholes on load (or that there were none).
    """

    name: str
    source: Path
    train_cameras: list[Camera]
    train_images: list[torch.Tensor]
    test_cameras: list[Camera]
    test_images: list[torch.Tensor]
    points: np.ndarray
    colors: np.ndarray
    extent: float
    white_background: bool = False
    random_init: bool = False
    image_folder: str = "images"
    resolution_note: str = ""
    undistortion: str = NO_UNDISTORTION
    input_files: list[Path] = field(default_factory=list)

    @property
    def background(self) -> torch.Tensor:
        return torch.ones(3) if self.white_background else torch.zeros(3)

    def summary(self) -> str:
        c = self.train_cameras[0] if self.train_cameras else self.test_cameras[0]
        return (f"{self.name}: {len(self.train_cameras)} train / {len(self.test_cameras)} test views, "
                f"{c.width}x{c.height}, {len(self.points)} init points"
                f"{' (random)' if self.random_init else ''}, extent {self.extent:.3f}")


def camera_extent(cameras: list[Camera]) -> float:
    """1.1 x max distance of the camera centres from their centroid (upstream getNerfppNorm)."""
    centers = torch.stack([c.center for c in cameras]).double()
    mean = centers.mean(0)
    return float(1.1 * (centers - mean).norm(dim=1).max())


@dataclass
class ViewSpec:
    """One view as a dataset reader describes it, before its image is loaded.

    ``viewmat`` is world->camera (4,4) float64 in OpenCV axes; intrinsics are given for an image
    of ``width`` x ``height`` (the model's size; the loader rescales them per axis to the size
    of the image actually found on disk and then to the evaluation resolution). ``split`` is
    "train"/"test" when the dataset defines its own split (Blender), else None. ``lens`` is
    the camera's distortion (None for a pinhole): the loader undistorts the image on load.
    """

    name: str
    image_path: Path
    viewmat: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    split: str | None = None
    lens: Lens | None = None


def random_init_points(n: int, lo: np.ndarray, hi: np.ndarray,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random initial point cloud for datasets without SfM points (3DGS Blender recipe):
    ``n`` points uniform in the box [lo, hi], near-grey colours = SH2RGB(U(0,1)/255)."""
    lo = np.asarray(lo, np.float64)
    hi = np.asarray(hi, np.float64)
    pts = lo + rng.random((n, 3)) * (hi - lo)
    shs = rng.random((n, 3)) / 255.0
    colors = shs * 0.28209479177387814 + 0.5
    return pts.astype(np.float32), colors.astype(np.float32)


def check_intrinsics(where: str, fx: Any, fy: Any, cx: Any, cy: Any, width: Any, height: Any) -> None:
    """SceneError (prefixed with ``where``: file and record) unless the focal lengths are
    positive and finite, the principal point finite and the image size a sane positive size."""
    for key, v in (("fx", fx), ("fy", fy), ("cx", cx), ("cy", cy)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(v):
            raise SceneError(f"{where}: {key} must be a finite number, got {v!r}")
    if fx <= 0 or fy <= 0:
        raise SceneError(f"{where}: focal length must be positive, got fx={fx!r}, fy={fy!r}")
    for key, v in (("width", width), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 < v <= MAX_IMAGE_SIDE:
            raise SceneError(f"{where}: image {key} must be an integer in 1..{MAX_IMAGE_SIDE}, got {v!r}")


def check_rotation(where: str, R: np.ndarray, tol: float = 1e-2) -> None:
    """SceneError unless ``R`` (3,3) is a finite proper rotation (orthonormal within ``tol``)."""
    R = np.asarray(R, np.float64)
    if R.shape != (3, 3) or not np.isfinite(R).all():
        raise SceneError(f"{where}: the rotation is not finite")
    if np.abs(R.T @ R - np.eye(3)).max() > tol or np.linalg.det(R) <= 0:
        raise SceneError(f"{where}: the rotation is not a proper rotation matrix "
                         f"(R^T R deviates from I by {np.abs(R.T @ R - np.eye(3)).max():.3g}, "
                         f"det {np.linalg.det(R):.3g})")


class ImageFinder:
    """Finds the file of an image a dataset names, as capture tools write names: ``./``
    prefixes, no extension, or an extension whose case (``.JPG``) or kind (``.png`` for a
    ``.JPG`` name, as in LLFF's downscaled folders) differs from the file on disk. Folder
    listings are read once."""

    def __init__(self) -> None:
        self._dirs: dict[Path, dict[str, list[str]]] = {}

    def _stems(self, folder: Path) -> dict[str, list[str]]:
        if folder not in self._dirs:
            by_stem: dict[str, list[str]] = {}
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                names = []
            for n in names:
                stem, ext = os.path.splitext(n)
                if ext.lower() in IMAGE_EXTS:
                    by_stem.setdefault(stem.lower(), []).append(n)
            self._dirs[folder] = by_stem
        return self._dirs[folder]

    def find(self, base: Path, rel: str) -> Path | None:
        p = base / Path(os.path.normpath(str(rel).replace("\\", "/")))
        if p.is_file():
            return p
        stem = p.stem if p.suffix.lower() in IMAGE_EXTS else p.name
        cands = self._stems(p.parent).get(stem.lower(), [])
        if not cands:
            return None
        same = [c for c in cands if os.path.splitext(c)[1].lower() == p.suffix.lower()]
        return p.parent / (same or cands)[0]

    def images_in(self, folder: Path) -> list[Path]:
        return sorted(folder / n for names in self._stems(folder).values() for n in names)


def warn_missing(source: Path, missing: list[str], total: int, folder: Path | None = None) -> None:
    """One warning that counts the records of ``source`` skipped for a missing image."""
    if missing:
        where = f" in {folder}" if folder is not None else ""
        warnings.warn(f"{source}: {len(missing)} of {total} frame(s) skipped because their image is "
                      f"missing{where}: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}",
                      stacklevel=4)
