"""A procedural test scene written as a COLMAP dataset (no download, CPU only, deterministic).

The images are ray traced with numpy, independently of every rasterizer in this project (so
a test that trains on them checks the renderer against something it did not produce): a few
spheres and boxes with procedural solid textures (checkers, smooth stripes, value noise)
standing on a finite textured ground square, Lambertian shading from one directional light
with hard shadows (view-independent, so a 3DGS can fit it exactly) and black background beyond
the ground. Each pixel averages 2x2 samples (anti-aliasing). Cameras orbit the centre at a
varying elevation, looking at it.

The sparse model is what a perfect SfM would give: one PINHOLE camera, exact poses, and
``num_points`` points sampled on visible surfaces with their shaded colours (plus small
position and colour noise), with real tracks (every view in which the true point is visible)
and the matching points2D.

Same arguments -> byte-identical files. ``python -m gs.data.synthetic OUT --seed 0``.

:func:`distort_capture` turns such a pinhole scene into the distorted capture a real camera
would give (the images resampled through OpenCV's distortion model), written as a COLMAP,
instant-ngp or nerfstudio dataset, so the loader's undistortion can be checked end to end.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gs.data.colmap import ColmapCamera, ColmapImage, ColmapPoints, rotmat_to_qvec, write_model

GROUND_HALF = 3.0
LIGHT = np.array([0.45, 0.3, 1.0]) / np.linalg.norm([0.45, 0.3, 1.0])
AMBIENT = 0.3
EPS = 1e-6

PALETTE = np.array([
    [0.90, 0.20, 0.15], [0.15, 0.55, 0.90], [0.95, 0.80, 0.15], [0.20, 0.75, 0.30],
    [0.85, 0.40, 0.85], [0.95, 0.55, 0.15], [0.10, 0.70, 0.70], [0.95, 0.95, 0.92],
    [0.15, 0.15, 0.20], [0.55, 0.35, 0.20],
])


# ---------------------------------------------------------------------------------- textures


@dataclass
class Texture:
    kind: str  # "checker", "stripes", "noise"
    c1: np.ndarray
    c2: np.ndarray
    scale: float
    axis: np.ndarray  # stripes direction
    lattice: np.ndarray  # (16,16,16) value-noise table

    def __call__(self, p: np.ndarray) -> np.ndarray:
        if self.kind == "checker":
            t = (np.floor(p / self.scale).sum(1) % 2.0)
            # a little noise so neighbouring squares are not identical
            t = 0.85 * t + 0.15 * _value_noise(p * 1.5, self.lattice)
        elif self.kind == "stripes":
            s = np.sin(2 * math.pi * (p @ self.axis) / self.scale)
            t = np.clip(0.5 + 1.5 * s, 0.0, 1.0)
        else:
            t = _value_noise(p / self.scale, self.lattice)
            t = np.clip((t - 0.5) * 2.2 + 0.5, 0.0, 1.0)
        return self.c1 * (1 - t[:, None]) + self.c2 * t[:, None]


def _value_noise(p: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Smooth 3D value noise in [0,1] from a periodic 16^3 lattice (trilinear, smoothstep)."""
    n = lattice.shape[0]
    f = np.floor(p)
    w = p - f
    w = w * w * (3 - 2 * w)
    i = f.astype(np.int64) % n
    j = (i + 1) % n
    out = np.zeros(len(p))
    for dx in (0, 1):
        ix = j[:, 0] if dx else i[:, 0]
        wx = w[:, 0] if dx else 1 - w[:, 0]
        for dy in (0, 1):
            iy = j[:, 1] if dy else i[:, 1]
            wy = w[:, 1] if dy else 1 - w[:, 1]
            for dz in (0, 1):
                iz = j[:, 2] if dz else i[:, 2]
                wz = w[:, 2] if dz else 1 - w[:, 2]
                out += wx * wy * wz * lattice[ix, iy, iz]
    return out


# ---------------------------------------------------------------------------------- shapes


@dataclass
class Sphere:
    center: np.ndarray
    radius: float
    texture: Texture

    def intersect(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        oc = o - self.center
        b = np.einsum("ij,ij->i", d, oc)
        c = np.einsum("ij,ij->i", oc, oc) - self.radius ** 2
        disc = b * b - c
        hit = disc > 0
        sq = np.sqrt(np.where(hit, disc, 0.0))
        t = -b - sq
        t = np.where(t > EPS, t, -b + sq)
        return np.where(hit & (t > EPS), t, np.inf)

    def normal(self, p: np.ndarray) -> np.ndarray:
        return (p - self.center) / self.radius

    def local(self, p: np.ndarray) -> np.ndarray:
        return p - self.center


@dataclass
class Box:
    center: np.ndarray
    half: np.ndarray
    angle: float  # rotation about z
    texture: Texture

    @property
    def R(self) -> np.ndarray:  # local -> world
        c, s = math.cos(self.angle), math.sin(self.angle)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    def intersect(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        # cull with the bounding sphere first: most rays miss a box
        t = np.full(len(d), np.inf)
        oc = o - self.center
        bb = np.einsum("ij,ij->i", d, oc)
        disc = bb * bb - np.einsum("ij,ij->i", oc, oc) + float(self.half @ self.half)
        sel = np.flatnonzero(disc > 0)
        if len(sel):
            t[sel] = self._intersect(o[sel], d[sel])
        return t

    def _intersect(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        R = self.R
        ol = (o - self.center) @ R
        dl = d @ R
        dl = np.where(np.abs(dl) < 1e-12, 1e-12, dl)
        inv = 1.0 / dl
        t1 = (-self.half - ol) * inv
        t2 = (self.half - ol) * inv
        lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
        tmin = np.maximum(np.maximum(lo[:, 0], lo[:, 1]), lo[:, 2])
        tmax = np.minimum(np.minimum(hi[:, 0], hi[:, 1]), hi[:, 2])
        hit = (tmax >= tmin) & (tmax > EPS)
        t = np.where(tmin > EPS, tmin, tmax)
        return np.where(hit, t, np.inf)

    def normal(self, p: np.ndarray) -> np.ndarray:
        pl = (p - self.center) @ self.R / self.half
        ax = np.abs(pl).argmax(1)
        n = np.zeros_like(pl)
        n[np.arange(len(p)), ax] = np.sign(pl[np.arange(len(p)), ax])
        return n @ self.R.T

    def local(self, p: np.ndarray) -> np.ndarray:
        return (p - self.center) @ self.R


@dataclass
class Ground:
    texture: Texture
    half: float = GROUND_HALF

    def intersect(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        dz = np.where(np.abs(d[:, 2]) < 1e-12, -1e-12, d[:, 2])
        t = -o[:, 2] / dz
        p = o + t[:, None] * d
        hit = (t > EPS) & (np.abs(p[:, 0]) <= self.half) & (np.abs(p[:, 1]) <= self.half)
        return np.where(hit, t, np.inf)

    def normal(self, p: np.ndarray) -> np.ndarray:
        n = np.zeros_like(p)
        n[:, 2] = 1.0
        return n

    def local(self, p: np.ndarray) -> np.ndarray:
        # the solid checker would flip at z = +-0 (round-off); texture the plane at z = 0.25
        q = p.copy()
        q[:, 2] = 0.25 * self.texture.scale
        return q


def _make_shapes(rng: np.random.Generator) -> list:
    def tex(kind: str, scale: float) -> Texture:
        i, j = rng.choice(len(PALETTE), 2, replace=False)
        ax = rng.normal(size=3)
        return Texture(kind, PALETTE[i], PALETTE[j], scale, ax / np.linalg.norm(ax),
                       rng.random((16, 16, 16)))

    shapes: list = [Ground(Texture("checker", np.array([0.82, 0.80, 0.74]), np.array([0.30, 0.32, 0.38]),
                                   0.6, np.array([1.0, 0.0, 0.0]), rng.random((16, 16, 16))))]
    a0 = rng.uniform(0, 2 * math.pi)
    kinds = ["sphere", "box", "sphere", "box", "sphere"]
    order = rng.permutation(len(kinds))
    for k in range(5):
        ang = a0 + 2 * math.pi * k / 5 + rng.uniform(-0.2, 0.2)
        rad = (0.95 if k % 2 == 0 else 1.65) + rng.uniform(-0.1, 0.1)
        xy = np.array([rad * math.cos(ang), rad * math.sin(ang)])
        t_kind = ["checker", "stripes", "noise"][int(order[k]) % 3]
        t_scale = {"checker": rng.uniform(0.18, 0.28), "stripes": rng.uniform(0.25, 0.4),
                   "noise": rng.uniform(0.25, 0.4)}[t_kind]
        if kinds[k] == "sphere":
            r = rng.uniform(0.35, 0.6)
            shapes.append(Sphere(np.array([xy[0], xy[1], r]), r, tex(t_kind, t_scale)))
        else:
            half = np.array([rng.uniform(0.25, 0.42), rng.uniform(0.25, 0.42), rng.uniform(0.3, 0.6)])
            shapes.append(Box(np.array([xy[0], xy[1], half[2]]), half, rng.uniform(0, math.pi / 2),
                              tex(t_kind, t_scale)))
    # a small sphere in the middle, floating a little, so the centre is not empty
    r = rng.uniform(0.25, 0.35)
    shapes.append(Sphere(np.array([0.0, 0.0, r + 0.25]), r, tex("stripes", 0.2)))
    return shapes


def _trace(shapes: list, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit distance (inf = miss) and shape index for each ray."""
    t_best = np.full(len(d), np.inf)
    idx = np.full(len(d), -1)
    for k, s in enumerate(shapes):
        t = s.intersect(o, d)
        closer = t < t_best
        t_best = np.where(closer, t, t_best)
        idx = np.where(closer, k, idx)
    return t_best, idx


def _shade(shapes: list, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colour (N,3) in [0,1], hit points (N,3) and hit mask of rays ``o + t d``."""
    t, idx = _trace(shapes, o, d)
    hit = np.isfinite(t)
    col = np.zeros((len(d), 3))
    p = o + np.where(hit, t, 0.0)[:, None] * d
    for k, s in enumerate(shapes):
        m = idx == k
        if not m.any():
            continue
        pk = p[m]
        n = s.normal(pk)
        lam = np.clip(n @ LIGHT, 0.0, None)
        # hard shadow: anything between the point and the light (only where it matters)
        lit = np.zeros(len(pk), bool)
        front = np.flatnonzero(lam > 0)
        so = pk[front] + 1e-4 * n[front]
        ts, _ = _trace(shapes[1:], so, np.broadcast_to(LIGHT, so.shape).copy())
        lit[front] = ~np.isfinite(ts)
        col[m] = s.texture(s.local(pk)) * (AMBIENT + (1 - AMBIENT) * (lam * lit))[:, None]
    return np.clip(col, 0.0, 1.0), p, hit


# ---------------------------------------------------------------------------------- cameras


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World->camera rotation, OpenCV axes (x right, y down, z forward), world z up."""
    fwd = target - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    return np.stack([right, down, fwd])


def _orbit(rng: np.random.Generator, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    target = np.array([0.0, 0.0, 0.35])
    a0 = rng.uniform(0, 2 * math.pi)
    phase = rng.uniform(0, 2 * math.pi)
    out = []
    for i in range(n):
        az = a0 + 2 * math.pi * i / n
        el = math.radians(30.0 + 8.0 * math.sin(3 * az + phase) + rng.uniform(-2, 2))
        dist = 4.4 + rng.uniform(-0.15, 0.15)
        eye = target + dist * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az),
                                        math.sin(el)])
        R = _look_at(eye, target)
        out.append((R, -R @ eye))
    return out


def _rays(R: np.ndarray, t: np.ndarray, uv: np.ndarray, f: float, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """World rays through pixel positions ``uv`` (N,2) (COLMAP convention: pixel centres at +0.5)."""
    dc = np.stack([(uv[:, 0] - cx) / f, (uv[:, 1] - cy) / f, np.ones(len(uv))], 1)
    d = dc @ R  # R^T dc for every row
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    eye = -R.T @ t
    return np.broadcast_to(eye, d.shape).copy(), d


# ---------------------------------------------------------------------------------- main


def generate_scene(out_dir: str | Path, *, seed: int = 0, num_views: int = 24, width: int = 160,
                   height: int = 120, num_points: int = 2000, fov_x_deg: float = 60.0) -> Path:
    """Write the procedural scene (``images/*.png`` + ``sparse/0/*.bin``) into ``out_dir``."""
    if num_views < 1 or width < 1 or height < 1 or num_points < 0:
        raise ValueError("num_views, width and height must be >= 1 and num_points >= 0")
    out = Path(out_dir)
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    for old in img_dir.glob("view_*.png"):
        old.unlink()
    rng = np.random.default_rng(seed)
    shapes = _make_shapes(rng)
    poses = _orbit(rng, num_views)
    f = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2)
    cx, cy = width / 2, height / 2

    # 2x2 supersampled image per view
    jj, ii = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    offs = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]
    names = [f"view_{i:04d}.png" for i in range(num_views)]
    for (R, t), name in zip(poses, names):
        acc = np.zeros((height * width, 3))
        for du, dv in offs:
            uv = np.stack([ii.ravel() + du, jj.ravel() + dv], 1).astype(np.float64)
            o, d = _rays(R, t, uv, f, cx, cy)
            acc += _shade(shapes, o, d)[0]
        img = np.round(acc / len(offs) * 255.0).clip(0, 255).astype(np.uint8).reshape(height, width, 3)
        Image.fromarray(img, "RGB").save(img_dir / name, format="PNG")

    # sparse points: random pixels of random views, keep surface hits
    pts, cols = np.zeros((0, 3)), np.zeros((0, 3))
    if num_points:
        per = max(1, math.ceil(2 * num_points / num_views))
        found_p, found_c = [], []
        for R, t in poses:
            uv = rng.random((per, 2)) * [width, height]
            o, d = _rays(R, t, uv, f, cx, cy)
            c, p, hit = _shade(shapes, o, d)
            found_p.append(p[hit])
            found_c.append(c[hit])
        pts = np.concatenate(found_p)[:num_points]
        cols = np.concatenate(found_c)[:num_points]
    P = len(pts)

    # tracks: every view that sees the (true) point unoccluded and inside the image
    images: dict[int, ColmapImage] = {}
    tracks: list[list[tuple[int, int]]] = [[] for _ in range(P)]
    obs_xy: list[list[np.ndarray]] = [[] for _ in range(P)]
    for k, ((R, t), name) in enumerate(zip(poses, names)):
        iid = k + 1
        xys, ids = np.zeros((0, 2)), np.zeros(0, np.int64)
        if P:
            pc = pts @ R.T + t
            z = pc[:, 2]
            uv = np.stack([f * pc[:, 0] / np.maximum(z, 1e-9) + cx, f * pc[:, 1] / np.maximum(z, 1e-9) + cy], 1)
            inside = (z > 1e-3) & (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
            eye = -R.T @ t
            dvec = pts - eye
            dist = np.linalg.norm(dvec, axis=1)
            th, _ = _trace(shapes, np.broadcast_to(eye, pts.shape).copy(), dvec / dist[:, None])
            vis = inside & (np.abs(th - dist) < 1e-6 + 1e-6 * dist)
            sel = np.flatnonzero(vis)
            xys, ids = uv[sel], sel.astype(np.int64) + 1
            for j, pi in enumerate(sel):
                tracks[pi].append((iid, j))
                obs_xy[pi].append(uv[pi])
        images[iid] = ColmapImage(iid, rotmat_to_qvec(R), t.copy(), 1, name, xys, ids)

    # noise on the stored points (an SfM point cloud is never exact)
    if P:
        pts_n = pts + rng.normal(scale=0.01, size=pts.shape)
        cols_n = np.clip(cols + rng.normal(scale=0.02, size=cols.shape), 0, 1)
        err = np.zeros(P)
        for pi in range(P):
            if obs_xy[pi]:
                errs = []
                for (iid, _), xy in zip(tracks[pi], obs_xy[pi]):
                    R, t = poses[iid - 1]
                    pc = R @ pts_n[pi] + t
                    errs.append(np.hypot(f * pc[0] / pc[2] + cx - xy[0], f * pc[1] / pc[2] + cy - xy[1]))
                err[pi] = float(np.mean(errs))
    else:
        pts_n, cols_n, err = pts, cols, np.zeros(0)
    points = ColmapPoints(np.arange(1, P + 1, dtype=np.int64), pts_n,
                          np.round(cols_n * 255).astype(np.uint8), err,
                          [np.array(tr, np.int32).reshape(-1, 2) for tr in tracks])
    cameras = {1: ColmapCamera(1, "PINHOLE", width, height, np.array([f, f, cx, cy]))}
    write_model(out / "sparse" / "0", cameras, images, points, ext=".bin")
    meta = {"generator": "gs.data.synthetic", "seed": seed, "num_views": num_views, "width": width,
            "height": height, "num_points": P, "fov_x_deg": fov_x_deg}
    (out / "synthetic.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return out


# ---------------------------------------------------------------------------------- distorted captures

CAPTURE_FORMATS = ("colmap", "ngp", "nerfstudio")


def distort_capture(src: str | Path, out_dir: str | Path, fmt: str, camera_model: str,
                    coeffs: tuple[float, ...] | list[float], *, focal_scale: float = 1.0) -> Path:
    """Write the pinhole scene ``src`` (as :func:`generate_scene` writes it) as a capture with
    lens distortion in ``fmt`` ("colmap", "ngp" = instant-ngp, "nerfstudio").

    ``camera_model`` is a COLMAP name (SIMPLE_RADIAL, RADIAL, OPENCV, FULL_OPENCV,
    OPENCV_FISHEYE) and ``coeffs`` its distortion parameters in COLMAP's (= OpenCV's) order.
    The distorted camera has the source's size and principal point and ``focal_scale`` times
    its focal length; each distorted pixel is sampled (bilinear) from the pinhole image along
    its ray. ValueError when a distorted pixel sees outside the pinhole image (raise
    ``focal_scale``) or when ``fmt`` cannot express the model.
    """
    import cv2

    from gs.data.colmap import CAMERA_MODEL_NPARAMS, read_model
    from gs.data.undistort import colmap_lens, undistort_points

    if fmt not in CAPTURE_FORMATS:
        raise ValueError(f"fmt must be one of {CAPTURE_FORMATS}, got {fmt!r}")
    src, out = Path(src), Path(out_dir)
    model = read_model(src / "sparse" / "0")
    (cam,) = model.cameras.values()
    if cam.model != "PINHOLE":
        raise ValueError(f"{src}: expected the generator's PINHOLE camera, got {cam.model}")
    fx, fy, cx, cy = (float(v) for v in cam.params)
    W, H = cam.width, cam.height
    fdx, fdy = fx * focal_scale, fy * focal_scale
    head = [fdx, cx, cy] if camera_model in ("SIMPLE_RADIAL", "RADIAL") else [fdx, fdy, cx, cy]
    params = np.array(head + [float(c) for c in coeffs])
    if len(params) != CAMERA_MODEL_NPARAMS.get(camera_model, -1):
        raise ValueError(f"{camera_model} needs {CAMERA_MODEL_NPARAMS.get(camera_model)} parameters, "
                         f"got {len(params)}")
    _, lens = colmap_lens(camera_model, params)
    if lens is None:
        raise ValueError("all distortion coefficients are zero")

    jj, ii = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    xy = undistort_points(lens, (fdx, fdy, cx, cy), np.stack([ii.ravel(), jj.ravel()], 1))
    map_x = (fx * xy[:, 0] + cx - 0.5).reshape(H, W).astype(np.float32)
    map_y = (fy * xy[:, 1] + cy - 0.5).reshape(H, W).astype(np.float32)
    if map_x.min() < 0 or map_x.max() > W - 1 or map_y.min() < 0 or map_y.max() > H - 1:
        raise ValueError(f"the distorted {camera_model} camera sees outside the pinhole image; "
                         f"raise focal_scale (now {focal_scale})")
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for im in sorted(model.images.values(), key=lambda m: m.name):
        arr = np.asarray(Image.open(src / "images" / im.name).convert("RGB"))
        dist = cv2.remap(arr, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        Image.fromarray(dist, "RGB").save(img_dir / im.name, format="PNG")
        names.append(im.name)

    if fmt == "colmap":
        cams = {cam.id: ColmapCamera(cam.id, camera_model, W, H, params)}
        write_model(out / "sparse" / "0", cams, model.images, model.points, ext=".bin")
        return out
    if camera_model == "FULL_OPENCV":
        raise ValueError(f"{fmt} transforms.json cannot express FULL_OPENCV's rational terms")
    if lens.fisheye:
        k = dict(zip(("k1", "k2", "k3", "k4"), lens.coeffs))
        k.update({"is_fisheye": True} if fmt == "ngp" else {"camera_model": "OPENCV_FISHEYE"})
    else:
        k = dict(zip(("k1", "k2", "p1", "p2", "k3"), lens.coeffs))
        if fmt == "nerfstudio":
            k["camera_model"] = "OPENCV"
    intr = {"fl_x": fdx, "fl_y": fdy, "cx": cx, "cy": cy, "w": W, "h": H, **k}
    frames = []
    for im in sorted(model.images.values(), key=lambda m: m.name):
        c2w = np.linalg.inv(im.viewmat())
        c2w[:3, 1:3] *= -1.0  # OpenCV -> OpenGL camera axes
        if fmt == "ngp":  # instant-ngp style: ./images/name.png, shared intrinsics
            fr = {"file_path": f"./images/{im.name}"}
        else:  # nerfstudio style: per-frame intrinsics, paths without extension
            fr = {"file_path": f"images/{Path(im.name).stem}", **intr}
        fr["transform_matrix"] = c2w.tolist()
        frames.append(fr)
    data: dict = {"frames": frames}
    if fmt == "ngp":
        data.update(intr)
    pts = model.points
    if len(pts):
        from plyfile import PlyData, PlyElement

        v = np.zeros(len(pts), [("x", "f4"), ("y", "f4"), ("z", "f4"),
                                ("red", "u1"), ("green", "u1"), ("blue", "u1")])
        v["x"], v["y"], v["z"] = pts.xyz.T
        v["red"], v["green"], v["blue"] = pts.rgb.T
        PlyData([PlyElement.describe(v, "vertex")]).write(str(out / "points.ply"))
        data["ply_file_path"] = "points.ply"
    (out / "transforms.json").write_text(json.dumps(data, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m gs.data.synthetic", description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--views", type=int, default=24)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--height", type=int, default=120)
    ap.add_argument("--points", type=int, default=2000)
    a = ap.parse_args(argv)
    print(generate_scene(a.out, seed=a.seed, num_views=a.views, width=a.width, height=a.height,
                         num_points=a.points))


if __name__ == "__main__":
    main()
