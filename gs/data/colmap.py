"""A small, dependency-free reader and writer for COLMAP sparse models.

Reads and writes both the binary (``cameras.bin``, ``images.bin``, ``points3D.bin``) and the
text (``.txt``) forms, following COLMAP's ``read_write_model.py`` layout. Written with
``struct``/numpy only, so the data package does not depend on pycolmap.

Pinhole cameras (``PINHOLE``, ``SIMPLE_PINHOLE``) are used as they are; ``SIMPLE_RADIAL``,
``RADIAL``, ``OPENCV``, ``FULL_OPENCV`` and ``OPENCV_FISHEYE`` carry a :class:`Lens` that the
loader removes on load (:mod:`gs.data.undistort`); the other models are rejected with a message
that says to run ``colmap image_undistorter`` first. Count fields of the binary files are
checked against the file size before anything is allocated. Tracks may be empty (e.g. the LLFF
``fern`` model has none).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gs.data.scene import SceneError, check_intrinsics
from gs.data.undistort import Lens, colmap_lens

# model id -> (name, number of parameters); COLMAP src/colmap/sensor/models.h
CAMERA_MODELS: dict[int, tuple[str, int]] = {
    0: ("SIMPLE_PINHOLE", 3),
    1: ("PINHOLE", 4),
    2: ("SIMPLE_RADIAL", 4),
    3: ("RADIAL", 5),
    4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8),
    6: ("FULL_OPENCV", 12),
    7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5),
    10: ("THIN_PRISM_FISHEYE", 12),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16),
}
CAMERA_MODEL_IDS: dict[str, int] = {name: mid for mid, (name, _) in CAMERA_MODELS.items()}
CAMERA_MODEL_NPARAMS: dict[str, int] = {name: n for name, n in CAMERA_MODELS.values()}
PINHOLE_MODELS = ("PINHOLE", "SIMPLE_PINHOLE")


@dataclass
class ColmapCamera:
    id: int
    model: str
    width: int
    height: int
    params: np.ndarray  # float64


@dataclass
class ColmapImage:
    id: int
    qvec: np.ndarray  # (4,) w,x,y,z world->camera rotation
    tvec: np.ndarray  # (3,) world->camera translation
    camera_id: int
    name: str
    xys: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (K,2) float64
    point3d_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # -1 = none

    def viewmat(self) -> np.ndarray:
        """World->camera 4x4 (OpenCV axes, as COLMAP), float64."""
        m = np.eye(4)
        m[:3, :3] = qvec_to_rotmat(self.qvec)
        m[:3, 3] = self.tvec
        return m


@dataclass
class ColmapPoints:
    ids: np.ndarray  # (P,) int64
    xyz: np.ndarray  # (P,3) float64
    rgb: np.ndarray  # (P,3) uint8
    error: np.ndarray  # (P,) float64
    tracks: list[np.ndarray] | None = None  # per point (L,2) int32 (image_id, point2D_idx)

    def __len__(self) -> int:
        return int(self.xyz.shape[0])

    @staticmethod
    def empty() -> "ColmapPoints":
        return ColmapPoints(np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros((0, 3), np.uint8),
                            np.zeros(0))


@dataclass
class ColmapModel:
    path: Path
    cameras: dict[int, ColmapCamera]
    images: dict[int, ColmapImage]
    points: ColmapPoints
    files: list[Path] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# geometry helpers


def qvec_to_rotmat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = (float(v) for v in np.asarray(q, dtype=np.float64) / np.linalg.norm(q))
    return np.array([
        [1 - 2 * y * y - 2 * z * z, 2 * x * y - 2 * w * z, 2 * z * x + 2 * w * y],
        [2 * x * y + 2 * w * z, 1 - 2 * x * x - 2 * z * z, 2 * y * z - 2 * w * x],
        [2 * z * x - 2 * w * y, 2 * y * z + 2 * w * x, 1 - 2 * x * x - 2 * y * y],
    ])


def rotmat_to_qvec(R: np.ndarray) -> np.ndarray:
    """Rotation matrix -> unit quaternion (w,x,y,z) with w >= 0."""
    Rxx, Ryx, Rzx, Rxy, Ryy, Rzy, Rxz, Ryz, Rzz = np.asarray(R, dtype=np.float64).flat
    K = np.array([
        [Rxx - Ryy - Rzz, 0, 0, 0],
        [Ryx + Rxy, Ryy - Rxx - Rzz, 0, 0],
        [Rzx + Rxz, Rzy + Ryz, Rzz - Rxx - Ryy, 0],
        [Ryz - Rzy, Rzx - Rxz, Rxy - Ryx, Rxx + Ryy + Rzz],
    ]) / 3.0
    vals, vecs = np.linalg.eigh(K)
    q = vecs[[3, 0, 1, 2], np.argmax(vals)]
    return -q if q[0] < 0 else q


def camera_intrinsics(cam: ColmapCamera, source: Path | str) -> tuple[float, float, float, float, Lens | None]:
    """(fx, fy, cx, cy, lens) of a camera, checked (positive finite focals, finite principal
    point and distortion, sane size); lens is None for pinhole models. SceneError names
    ``source`` and the camera for models the loader cannot undistort and for bad values."""
    where = f"{source}: camera {cam.id} ({cam.model})"
    try:
        (fx, fy, cx, cy), lens = colmap_lens(cam.model, cam.params)
    except ValueError as e:
        raise SceneError(
            f"{where}: {e}. Undistort the images first, e.g. `colmap image_undistorter "
            f"--image_path images --input_path sparse/0 --output_path undistorted`, and point the "
            f"loader at the undistorted folder.") from e
    check_intrinsics(where, fx, fy, cx, cy, cam.width, cam.height)
    return fx, fy, cx, cy, lens


def check_image(img: ColmapImage, source: Path | str) -> None:
    """SceneError naming ``source`` and the image unless its pose is finite and its quaternion
    can be normalised (a NaN or zero quaternion would render that view black, silently)."""
    where = f"{source}: image {img.id} ({img.name!r})"
    q, t = np.asarray(img.qvec, np.float64), np.asarray(img.tvec, np.float64)
    if not np.isfinite(q).all() or np.linalg.norm(q) < 1e-8:
        raise SceneError(f"{where}: the rotation quaternion {q.tolist()} is not a finite non-zero quaternion")
    if not np.isfinite(t).all():
        raise SceneError(f"{where}: the translation {t.tolist()} is not finite")


# --------------------------------------------------------------------------------------------
# binary reader


class _Reader:
    def __init__(self, path: Path):
        self.path = path
        try:
            self.buf = path.read_bytes()
        except OSError as e:
            raise SceneError(f"{path}: cannot read COLMAP file ({e})") from e
        self.pos = 0

    def unpack(self, fmt: str) -> tuple:
        s = struct.Struct("<" + fmt)
        try:
            out = s.unpack_from(self.buf, self.pos)
        except struct.error as e:
            raise SceneError(f"{self.path}: truncated or corrupt COLMAP binary file "
                             f"(at byte {self.pos} of {len(self.buf)})") from e
        self.pos += s.size
        return out

    def array(self, dtype, count: int) -> np.ndarray:
        dt = np.dtype(dtype)
        nbytes = dt.itemsize * count
        if self.pos + nbytes > len(self.buf):
            raise SceneError(f"{self.path}: truncated or corrupt COLMAP binary file "
                             f"(needs {nbytes} bytes at byte {self.pos} of {len(self.buf)})")
        out = np.frombuffer(self.buf, dtype=dt, count=count, offset=self.pos).copy()
        self.pos += nbytes
        return out

    def count(self, what: str, min_record: int) -> int:
        """A record count, checked against the bytes left (``min_record`` bytes per record at
        least) before anything is allocated for it."""
        (n,) = self.unpack("Q")
        left = len(self.buf) - self.pos
        if n * min_record > left:
            raise SceneError(f"{self.path}: corrupt COLMAP binary file: it claims {n} {what}, "
                             f"which needs at least {n * min_record} bytes, but {left} are left")
        return n

    def skip(self, nbytes: int) -> None:
        if self.pos + nbytes > len(self.buf):
            raise SceneError(f"{self.path}: truncated or corrupt COLMAP binary file")
        self.pos += nbytes

    def cstring(self) -> str:
        end = self.buf.find(b"\x00", self.pos)
        if end < 0:
            raise SceneError(f"{self.path}: truncated or corrupt COLMAP binary file (unterminated name)")
        s = self.buf[self.pos:end].decode("utf-8", errors="replace")
        self.pos = end + 1
        return s

    def done(self) -> None:
        if self.pos != len(self.buf):
            raise SceneError(f"{self.path}: corrupt COLMAP binary file ({len(self.buf) - self.pos} "
                             f"unexpected trailing bytes)")


def read_cameras_binary(path: Path | str) -> dict[int, ColmapCamera]:
    r = _Reader(Path(path))
    n = r.count("cameras", 24 + 8 * 3)
    cams = {}
    for _ in range(n):
        cid, mid, w, h = r.unpack("iiQQ")
        if mid not in CAMERA_MODELS:
            raise SceneError(f"{path}: camera {cid} has unknown COLMAP model id {mid}")
        name, npar = CAMERA_MODELS[mid]
        cams[cid] = ColmapCamera(cid, name, int(w), int(h), r.array("<f8", npar))
    r.done()
    return cams


_IMG_POINT = np.dtype([("x", "<f8"), ("y", "<f8"), ("id", "<i8")])


def read_images_binary(path: Path | str, *, with_points2d: bool = False) -> dict[int, ColmapImage]:
    r = _Reader(Path(path))
    n = r.count("images", 4 + 7 * 8 + 4 + 1 + 8)
    imgs = {}
    for _ in range(n):
        iid, qw, qx, qy, qz, tx, ty, tz, cid = r.unpack("idddddddi")
        name = r.cstring()
        k = r.count(f"points2D in image {iid}", 24)
        img = ColmapImage(iid, np.array([qw, qx, qy, qz]), np.array([tx, ty, tz]), cid, name)
        if with_points2d:
            a = r.array(_IMG_POINT, k)
            img.xys = np.stack([a["x"], a["y"]], 1).astype(np.float64) if k else np.zeros((0, 2))
            img.point3d_ids = a["id"].astype(np.int64) if k else np.zeros(0, np.int64)
        else:
            r.skip(24 * k)
        imgs[iid] = img
    r.done()
    return imgs


def read_points3d_binary(path: Path | str, *, with_tracks: bool = False) -> ColmapPoints:
    r = _Reader(Path(path))
    n = r.count("points", 43)
    ids = np.empty(n, np.int64)
    xyz = np.empty((n, 3))
    rgb = np.empty((n, 3), np.uint8)
    err = np.empty(n)
    tracks: list[np.ndarray] | None = [] if with_tracks else None
    rec = struct.Struct("<QdddBBBdQ")  # 43 bytes, fixed part of a point record
    buf, pos = r.buf, r.pos
    for i in range(n):
        try:
            pid, x, y, z, cr, cg, cb, e, tl = rec.unpack_from(buf, pos)
        except struct.error as ex:
            raise SceneError(f"{path}: truncated or corrupt COLMAP binary file (point {i} of {n})") from ex
        pos += rec.size
        ids[i] = pid
        xyz[i] = (x, y, z)
        rgb[i] = (cr, cg, cb)
        err[i] = e
        if tracks is not None:
            r.pos = pos
            tracks.append(r.array("<i4", 2 * tl).reshape(-1, 2))
        pos += 8 * tl
    r.pos = pos
    if pos > len(buf):
        raise SceneError(f"{path}: truncated or corrupt COLMAP binary file")
    r.done()
    return ColmapPoints(ids, xyz, rgb, err, tracks)


# --------------------------------------------------------------------------------------------
# text reader


def _text_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise SceneError(f"{path}: cannot read COLMAP file ({e})") from e
    return [ln.rstrip("\r\n") for ln in text.split("\n")]


def read_cameras_text(path: Path | str) -> dict[int, ColmapCamera]:
    path = Path(path)
    cams = {}
    for ln_no, ln in enumerate(_text_lines(path), 1):
        ln = ln.strip()
        if not ln or ln.startswith("#"):
            continue
        tok = ln.split()
        try:
            cid, model, w, h = int(tok[0]), tok[1], int(tok[2]), int(tok[3])
            params = np.array([float(v) for v in tok[4:]])
        except (IndexError, ValueError) as e:
            raise SceneError(f"{path}:{ln_no}: malformed camera line: {ln!r}") from e
        if model not in CAMERA_MODEL_NPARAMS:
            raise SceneError(f"{path}:{ln_no}: unknown COLMAP camera model {model!r}")
        if len(params) != CAMERA_MODEL_NPARAMS[model]:
            raise SceneError(f"{path}:{ln_no}: camera model {model} needs "
                             f"{CAMERA_MODEL_NPARAMS[model]} parameters, got {len(params)}")
        cams[cid] = ColmapCamera(cid, model, w, h, params)
    return cams


def read_images_text(path: Path | str, *, with_points2d: bool = False) -> dict[int, ColmapImage]:
    path = Path(path)
    # Two lines per image; the second (points2D) may be empty, so blank lines are NOT skipped
    # once a header line has been read.
    lines = _text_lines(path)
    imgs = {}
    i = 0
    while i < len(lines):
        ln = lines[i].strip()
        if not ln or ln.startswith("#"):
            i += 1
            continue
        tok = ln.split(maxsplit=9)
        try:
            iid = int(tok[0])
            q = np.array([float(v) for v in tok[1:5]])
            t = np.array([float(v) for v in tok[5:8]])
            cid = int(tok[8])
            name = tok[9]
        except (IndexError, ValueError) as e:
            raise SceneError(f"{path}:{i + 1}: malformed image line: {ln!r}") from e
        img = ColmapImage(iid, q, t, cid, name)
        pts = lines[i + 1].split() if i + 1 < len(lines) else []
        if with_points2d and pts:
            try:
                a = np.array([float(v) for v in pts]).reshape(-1, 3)
            except ValueError as e:
                raise SceneError(f"{path}:{i + 2}: malformed points2D line") from e
            img.xys = a[:, :2]
            img.point3d_ids = a[:, 2].astype(np.int64)
        imgs[iid] = img
        i += 2
    return imgs


def read_points3d_text(path: Path | str, *, with_tracks: bool = False) -> ColmapPoints:
    path = Path(path)
    ids, xyz, rgb, err = [], [], [], []
    tracks: list[np.ndarray] | None = [] if with_tracks else None
    for ln_no, ln in enumerate(_text_lines(path), 1):
        ln = ln.strip()
        if not ln or ln.startswith("#"):
            continue
        tok = ln.split()
        try:
            ids.append(int(tok[0]))
            xyz.append([float(v) for v in tok[1:4]])
            rgb.append([int(v) for v in tok[4:7]])
            err.append(float(tok[7]))
            if tracks is not None:
                tracks.append(np.array([int(v) for v in tok[8:]], np.int32).reshape(-1, 2))
        except (IndexError, ValueError) as e:
            raise SceneError(f"{path}:{ln_no}: malformed point line: {ln[:80]!r}") from e
    if not ids:
        return ColmapPoints(np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros((0, 3), np.uint8),
                            np.zeros(0), tracks)
    return ColmapPoints(np.array(ids, np.int64), np.array(xyz, np.float64),
                        np.array(rgb, np.uint8), np.array(err, np.float64), tracks)


# --------------------------------------------------------------------------------------------
# model-level helpers


def find_sparse_dir(root: Path | str) -> Path:
    """The folder of the COLMAP model: ``root/sparse/0`` if present, else ``root/sparse``
    (``root`` itself is accepted when it directly holds ``cameras.bin``/``cameras.txt``)."""
    root = Path(root)
    for cand in (root / "sparse" / "0", root / "sparse", root):
        if (cand / "cameras.bin").is_file() or (cand / "cameras.txt").is_file():
            return cand
    if (root / "sparse").is_dir():
        raise SceneError(f"{root / 'sparse'}: no COLMAP model found (expected cameras.bin/images.bin/"
                         f"points3D.bin or the .txt files in sparse/0/ or sparse/)")
    raise SceneError(f"{root}: no COLMAP model: the folder sparse/0/ (or sparse/) is missing")


def read_model(sparse_dir: Path | str, *, with_tracks: bool = False) -> ColmapModel:
    """Read a COLMAP model folder, binary if ``cameras.bin`` exists, else text."""
    d = Path(sparse_dir)
    ext = ".bin" if (d / "cameras.bin").is_file() else ".txt"
    files = [d / f"{stem}{ext}" for stem in ("cameras", "images", "points3D")]
    for f in files:
        if not f.is_file():
            raise SceneError(f"{f}: missing file of the COLMAP model in {d}")
    if ext == ".bin":
        cams = read_cameras_binary(files[0])
        imgs = read_images_binary(files[1], with_points2d=with_tracks)
        pts = read_points3d_binary(files[2], with_tracks=with_tracks)
    else:
        cams = read_cameras_text(files[0])
        imgs = read_images_text(files[1], with_points2d=with_tracks)
        pts = read_points3d_text(files[2], with_tracks=with_tracks)
    return ColmapModel(d, cams, imgs, pts, files)


# --------------------------------------------------------------------------------------------
# writers (used by the synthetic scene generator and the tests)


def write_cameras_binary(path: Path | str, cameras: dict[int, ColmapCamera]) -> None:
    out = [struct.pack("<Q", len(cameras))]
    for cid in sorted(cameras):
        c = cameras[cid]
        n = CAMERA_MODEL_NPARAMS[c.model]
        if len(c.params) != n:
            raise ValueError(f"camera {cid}: {c.model} needs {n} params, got {len(c.params)}")
        out.append(struct.pack("<iiQQ", cid, CAMERA_MODEL_IDS[c.model], c.width, c.height))
        out.append(np.asarray(c.params, "<f8").tobytes())
    Path(path).write_bytes(b"".join(out))


def write_images_binary(path: Path | str, images: dict[int, ColmapImage]) -> None:
    out = [struct.pack("<Q", len(images))]
    for iid in sorted(images):
        im = images[iid]
        out.append(struct.pack("<idddddddi", iid, *map(float, im.qvec), *map(float, im.tvec),
                               im.camera_id))
        out.append(im.name.encode("utf-8") + b"\x00")
        k = len(im.point3d_ids)
        out.append(struct.pack("<Q", k))
        if k:
            a = np.zeros(k, _IMG_POINT)
            a["x"], a["y"], a["id"] = im.xys[:, 0], im.xys[:, 1], im.point3d_ids
            out.append(a.tobytes())
    Path(path).write_bytes(b"".join(out))


def write_points3d_binary(path: Path | str, points: ColmapPoints) -> None:
    out = [struct.pack("<Q", len(points))]
    rec = struct.Struct("<QdddBBBdQ")
    for i in range(len(points)):
        tr = points.tracks[i] if points.tracks is not None else np.zeros((0, 2), np.int32)
        out.append(rec.pack(int(points.ids[i]), *map(float, points.xyz[i]),
                            *map(int, points.rgb[i]), float(points.error[i]), len(tr)))
        if len(tr):
            out.append(np.asarray(tr, "<i4").tobytes())
    Path(path).write_bytes(b"".join(out))


def write_cameras_text(path: Path | str, cameras: dict[int, ColmapCamera]) -> None:
    lines = ["# Camera list with one line of data per camera:",
             "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
             f"# Number of cameras: {len(cameras)}"]
    for cid in sorted(cameras):
        c = cameras[cid]
        lines.append(" ".join([str(cid), c.model, str(c.width), str(c.height),
                               *(repr(float(p)) for p in c.params)]))
    Path(path).write_text("\n".join(lines) + "\n")


def write_images_text(path: Path | str, images: dict[int, ColmapImage]) -> None:
    lines = ["# Image list with two lines of data per image:",
             "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
             "#   POINTS2D[] as (X, Y, POINT3D_ID)",
             f"# Number of images: {len(images)}"]
    for iid in sorted(images):
        im = images[iid]
        lines.append(" ".join([str(iid), *(repr(float(v)) for v in im.qvec),
                               *(repr(float(v)) for v in im.tvec), str(im.camera_id), im.name]))
        lines.append(" ".join(f"{x!r} {y!r} {int(p)}" for (x, y), p in
                              zip(im.xys.tolist(), im.point3d_ids.tolist())))
    Path(path).write_text("\n".join(lines) + "\n")


def write_points3d_text(path: Path | str, points: ColmapPoints) -> None:
    lines = ["# 3D point list with one line of data per point:",
             "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
             f"# Number of points: {len(points)}"]
    for i in range(len(points)):
        tr = points.tracks[i] if points.tracks is not None else np.zeros((0, 2), np.int32)
        lines.append(" ".join([str(int(points.ids[i])), *(repr(float(v)) for v in points.xyz[i]),
                               *(str(int(v)) for v in points.rgb[i]), repr(float(points.error[i])),
                               *(str(int(v)) for v in np.asarray(tr).ravel())]))
    Path(path).write_text("\n".join(lines) + "\n")


def write_model(sparse_dir: Path | str, cameras: dict[int, ColmapCamera],
                images: dict[int, ColmapImage], points: ColmapPoints, *, ext: str = ".bin") -> None:
    """Write a COLMAP model (``ext`` = ``.bin`` or ``.txt``) into ``sparse_dir``."""
    d = Path(sparse_dir)
    d.mkdir(parents=True, exist_ok=True)
    if ext == ".bin":
        write_cameras_binary(d / "cameras.bin", cameras)
        write_images_binary(d / "images.bin", images)
        write_points3d_binary(d / "points3D.bin", points)
    elif ext == ".txt":
        write_cameras_text(d / "cameras.txt", cameras)
        write_images_text(d / "images.txt", images)
        write_points3d_text(d / "points3D.txt", points)
    else:
        raise ValueError(f"ext must be '.bin' or '.txt', got {ext!r}")
