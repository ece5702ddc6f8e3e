"""Scene: what every reader returns and every trainer, renderer and evaluator consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gs.camera import Camera


class SceneError(ValueError):
    """A dataset folder that cannot be read; the message names the file and the problem."""


@dataclass
class Scene:
    """Cameras and images of one scene, already split and at evaluation resolution.

    Images are uint8 (H,W,3) tensors on the CPU (moved to the training device once by the
    Trainer); cameras match their image sizes. ``points``/``colors`` (P,3) float32, colours in
    [0,1], are the SfM points (or the random init when the dataset has none, flagged by
    ``random_init``). ``extent`` = 1.1 x max distance of the training camera centres from
    their centroid (the NeRF++ normalisation of 3DGS).
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
    "train"/"test" when the dataset defines its own split (Blender), else None.
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
