"""Lens distortion: the camera models real captures carry, and their removal on load.

3DGS rasterizes an ideal pinhole, so a distorted image is remapped once, when the scene is
loaded, onto a pinhole camera (OpenCV's own distortion models, so the result agrees with
COLMAP, nerfstudio and instant-ngp, which use the same formulas):

- ``OPENCV``: OpenCV's standard model, coefficients in OpenCV order (k1, k2, p1, p2[, k3[, k4,
  k5, k6]]) (COLMAP SIMPLE_RADIAL, RADIAL, OPENCV, FULL_OPENCV; transforms.json ``k1 k2 k3 p1
  p2``);
- ``OPENCV_FISHEYE``: OpenCV's equidistant fisheye model, (k1, k2, k3, k4) (COLMAP
  OPENCV_FISHEYE; transforms.json ``is_fisheye`` or ``camera_model: OPENCV_FISHEYE``).

The new pinhole keeps the focal lengths (as COLMAP's ``image_undistorter``) and is cropped to
the pixels whose source lies inside the distorted image (no invalid border), with the
principal point at the same relative position, so a centred principal point stays centred.
Each side grows at most 2x (COLMAP's default ``max_scale``), which bounds wide fisheyes.
Resampling is bilinear (``cv2.remap`` ``INTER_LINEAR``, COLMAP's undistorter is bilinear too).
Intrinsics use the pixel-centre-at-+0.5 convention of COLMAP and the rasterizers; OpenCV's
integer-centre convention is converted at the boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_GROWTH = 2.0
BORDER_SAMPLES = 512
INTERPOLATION = "bilinear (cv2.remap INTER_LINEAR)"


def _cv2():
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ImportError("undistorting images needs OpenCV: pip install opencv-python-headless") from e
    return cv2


@dataclass(frozen=True)
class Lens:
    """A distortion model: ``model`` is "OPENCV" or "OPENCV_FISHEYE", ``coeffs`` in OpenCV's
    order, ``source`` the name the dataset gave it (e.g. SIMPLE_RADIAL) for the record."""

    model: str
    coeffs: tuple[float, ...]
    source: str

    @property
    def fisheye(self) -> bool:
        return self.model == "OPENCV_FISHEYE"

    def dist(self) -> np.ndarray:
        return np.asarray(self.coeffs, np.float64).reshape(-1, 1)


def make_lens(model: str, coeffs: tuple[float, ...] | list[float], source: str) -> Lens | None:
    """A :class:`Lens`, or None when every coefficient is zero (a pinhole camera)."""
    c = tuple(float(v) for v in coeffs)
    if model == "OPENCV_FISHEYE":
        c = (c + (0.0,) * 4)[:4]
    elif model == "OPENCV":
        n = 4 if len(c) <= 4 else 5 if len(c) == 5 else 8
        c = (c + (0.0,) * n)[:n]
    else:
        raise ValueError(f"unknown lens model {model!r}")
    if not all(math.isfinite(v) for v in c):
        raise ValueError(f"{source}: distortion coefficients must be finite, got {c}")
    return Lens(model, c, source) if any(c) else None


def colmap_lens(model: str, params: np.ndarray) -> tuple[tuple[float, float, float, float], Lens | None]:
    """((fx, fy, cx, cy), lens) of a COLMAP camera; ValueError for models not supported."""
    p = [float(v) for v in params]
    if model == "SIMPLE_PINHOLE":
        return (p[0], p[0], p[1], p[2]), None
    if model == "PINHOLE":
        return (p[0], p[1], p[2], p[3]), None
    if model == "SIMPLE_RADIAL":
        return (p[0], p[0], p[1], p[2]), make_lens("OPENCV", [p[3]], model)
    if model == "RADIAL":
        return (p[0], p[0], p[1], p[2]), make_lens("OPENCV", [p[3], p[4]], model)
    if model == "OPENCV":
        return (p[0], p[1], p[2], p[3]), make_lens("OPENCV", p[4:8], model)
    if model == "FULL_OPENCV":
        return (p[0], p[1], p[2], p[3]), make_lens("OPENCV", p[4:12], model)
    if model == "OPENCV_FISHEYE":
        return (p[0], p[1], p[2], p[3]), make_lens("OPENCV_FISHEYE", p[4:8], model)
    raise ValueError(f"camera model {model} is not supported (supported: SIMPLE_PINHOLE, "
                     f"PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV, FULL_OPENCV, OPENCV_FISHEYE)")


def _k(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """OpenCV camera matrix (integer pixel centres) from +0.5-convention intrinsics."""
    return np.array([[fx, 0.0, cx - 0.5], [0.0, fy, cy - 0.5], [0.0, 0.0, 1.0]])


def distort_points(lens: Lens, K: tuple[float, float, float, float], xy: np.ndarray) -> np.ndarray:
    """Pixel positions (+0.5 convention) in the distorted image of normalised pinhole
    coordinates ``xy`` (N,2): OpenCV's forward model."""
    cv2 = _cv2()
    xy = np.ascontiguousarray(xy, np.float64).reshape(-1, 1, 2)
    Km = _k(*K)
    if lens.fisheye:
        out = cv2.fisheye.distortPoints(xy, Km, lens.dist())
    else:
        pts3 = np.concatenate([xy, np.ones((len(xy), 1, 1))], 2)
        out, _ = cv2.projectPoints(pts3, np.zeros(3), np.zeros(3), Km, lens.dist())
    return out.reshape(-1, 2) + 0.5


def undistort_points(lens: Lens, K: tuple[float, float, float, float], uv: np.ndarray) -> np.ndarray:
    """Normalised pinhole coordinates (N,2) of distorted pixel positions ``uv`` (+0.5
    convention): OpenCV's iterative inverse, run to convergence (its default stops after 5
    iterations, which is not enough for strong distortion)."""
    cv2 = _cv2()
    uv = np.ascontiguousarray(uv, np.float64).reshape(-1, 1, 2) - 0.5
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-12)
    if lens.fisheye:
        out = cv2.fisheye.undistortPoints(uv, _k(*K), lens.dist(), None, None, None, crit)
    else:
        out = cv2.undistortPoints(uv, _k(*K), lens.dist(), None, None, None, crit)
    return out.reshape(-1, 2)


@dataclass
class Undistorter:
    """Remaps images of one distorted camera (at one image size) onto its pinhole camera."""

    lens: Lens
    src_size: tuple[int, int]
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    map_x: np.ndarray
    map_y: np.ndarray

    def __call__(self, image: np.ndarray) -> np.ndarray:
        cv2 = _cv2()
        if image.shape[1] != self.src_size[0] or image.shape[0] != self.src_size[1]:
            raise ValueError(f"image is {image.shape[1]}x{image.shape[0]}, the undistorter was "
                             f"built for {self.src_size[0]}x{self.src_size[1]}")
        return cv2.remap(image, self.map_x, self.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def source_of(self, uv: np.ndarray) -> np.ndarray:
        """Source positions (+0.5 convention) of output pixel positions (integer + 0.5)."""
        i = np.asarray(uv[:, 0] - 0.5).round().astype(int)
        j = np.asarray(uv[:, 1] - 0.5).round().astype(int)
        return np.stack([self.map_x[j, i], self.map_y[j, i]], 1).astype(np.float64) + 0.5

    def describe(self) -> str:
        w, h = self.src_size
        return f"{self.lens.source} {w}x{h}->{self.width}x{self.height}"


def build_undistorter(lens: Lens, fx: float, fy: float, cx: float, cy: float,
                      width: int, height: int) -> Undistorter:
    """The pinhole camera and remap tables for a distorted ``width`` x ``height`` image.

    The valid region is bounded by the undistorted images of the four borders (through the
    centres of the outermost pixels, so bilinear sampling never leaves the image); the output
    is the largest rectangle inside it around the principal point at its relative position.
    ValueError when the principal point is not inside the valid region.
    """
    cv2 = _cv2()
    K = (fx, fy, cx, cy)
    s = np.linspace(0.0, 1.0, BORDER_SAMPLES)
    x0, x1, y0, y1 = 0.5, width - 0.5, 0.5, height - 0.5
    xs, ys = x0 + s * (x1 - x0), y0 + s * (y1 - y0)
    sides = {
        "left": np.stack([np.full_like(ys, x0), ys], 1), "right": np.stack([np.full_like(ys, x1), ys], 1),
        "top": np.stack([xs, np.full_like(xs, y0)], 1), "bottom": np.stack([xs, np.full_like(xs, y1)], 1),
    }
    und = {k: undistort_points(lens, K, v) for k, v in sides.items()}
    left, right = und["left"][:, 0].max(), und["right"][:, 0].min()
    top, bottom = und["top"][:, 1].max(), und["bottom"][:, 1].min()
    if not (np.isfinite([left, right, top, bottom]).all() and left < 0 < right and top < 0 < bottom):
        raise ValueError(f"{lens.source} camera: the principal point ({cx:g}, {cy:g}) is not inside "
                         f"the undistorted image; cannot crop a pinhole image around it")
    rx, ry = cx / width, cy / height
    if not (0 < rx < 1 and 0 < ry < 1):
        raise ValueError(f"{lens.source} camera: principal point ({cx:g}, {cy:g}) outside the "
                         f"{width}x{height} image")
    # largest W' with the principal point at rx*W': -rx*W'/fx >= left and (1-rx)*W'/fx <= right
    w_new = min(-left * fx / rx, right * fx / (1 - rx), MAX_GROWTH * width)
    h_new = min(-top * fy / ry, bottom * fy / (1 - ry), MAX_GROWTH * height)
    W, H = max(1, math.floor(w_new)), max(1, math.floor(h_new))
    ncx, ncy = rx * W, ry * H
    Kn = _k(fx, fy, ncx, ncy)
    if lens.fisheye:
        mx, my = cv2.fisheye.initUndistortRectifyMap(_k(*K), lens.dist(), np.eye(3), Kn, (W, H), cv2.CV_32FC1)
    else:
        mx, my = cv2.initUndistortRectifyMap(_k(*K), lens.dist(), None, Kn, (W, H), cv2.CV_32FC1)
    return Undistorter(lens, (width, height), fx, fy, ncx, ncy, W, H, mx, my)
