"""GaussianModel: the parameters of a 3DGS scene and the standard 3DGS PLY format.

Parameters are stored raw (as optimised) in a ``torch.nn.ParameterDict`` with the keys
``means`` (N,3), ``scales`` (N,3, log), ``quats`` (N,4, w x y z, unnormalised),
``opacities`` (N, logit), ``sh0`` (N,1,3) and ``shN`` (N,K-1,3) with K = (degree+1)^2.
Methods may add extra per-Gaussian parameters (first dimension N, e.g. EDIM's importance);
the densification ops keep every entry of the dict aligned.

The PLY layout follows the original implementation (x, y, z, nx, ny, nz, f_dc_0..2,
f_rest_0.., opacity, scale_0..2, rot_0..3; f_rest stored channel-major), so files open in
common 3DGS viewers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

SH_C0 = 0.28209479177387814
CORE_KEYS = ("means", "scales", "quats", "opacities", "sh0", "shN")


class PlyFormatError(ValueError):
    """A PLY file that is not a readable 3DGS model."""


def rgb_to_sh(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb - 0.5) / SH_C0


def sh_to_rgb(sh: torch.Tensor) -> torch.Tensor:
    return sh * SH_C0 + 0.5


def num_sh_bases(degree: int) -> int:
    return (degree + 1) ** 2


def _degree_from_bases(k: int) -> int:
    d = int(round(math.sqrt(k))) - 1
    if (d + 1) ** 2 != k:
        raise ValueError(f"{k} SH coefficients per channel is not (degree+1)^2")
    return d


KNN_KDTREE = "scipy cKDTree (exact)"
KNN_SIMPLE = "simple-knn distCUDA2"


def init_knn() -> str:
    """The 3-nearest-neighbour search of the initial scales: simple-knn's ``distCUDA2`` (what
    upstream 3DGS uses) when the package is installed and CUDA is available, else scipy's exact
    KD-tree. Recorded in train_stats.json as ``init_knn``."""
    if not torch.cuda.is_available():
        return KNN_KDTREE
    try:
        from simple_knn._C import distCUDA2  # noqa: F401
    except ImportError:
        return KNN_KDTREE
    return KNN_SIMPLE


def mean_sq_dist_3nn(xyz: torch.Tensor, knn: str | None = None) -> torch.Tensor:
    """(N,) float32 CPU: mean squared distance of each point to its 3 nearest other points
    (fewer when the cloud has fewer; 1 for a single point), by ``knn`` (default
    :func:`init_knn`)."""
    knn = knn or init_knn()
    n = int(xyz.shape[0])
    if knn == KNN_SIMPLE and n >= 4:
        from simple_knn._C import distCUDA2

        return distCUDA2(xyz.detach().float().cuda().contiguous()).float().cpu()
    if n < 2:
        return torch.ones(n)
    from scipy.spatial import cKDTree

    pts = xyz.detach().cpu().double().numpy()
    dist, _ = cKDTree(pts).query(pts, k=min(4, n))
    return torch.as_tensor((dist[:, 1:] ** 2).mean(axis=1), dtype=torch.float32)


class GaussianModel:
    """A set of 3D Gaussians; thin wrapper around a ParameterDict."""

    def __init__(self, params: dict[str, torch.Tensor], sh_degree: int | None = None):
        missing = [k for k in CORE_KEYS if k not in params]
        if missing:
            raise ValueError(f"GaussianModel needs parameters {missing}")
        self.params = torch.nn.ParameterDict(
            {k: v if isinstance(v, torch.nn.Parameter) else torch.nn.Parameter(v) for k, v in params.items()}
        )
        k = 1 + self.params["shN"].shape[1]
        self.sh_degree = _degree_from_bases(k) if sh_degree is None else sh_degree
        if num_sh_bases(self.sh_degree) != k:
            raise ValueError(f"sh_degree {self.sh_degree} does not match {k} SH coefficients")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_points(
        cls,
        xyz: np.ndarray | torch.Tensor,
        rgb: np.ndarray | torch.Tensor,
        sh_degree: int = 3,
        init_opacity: float = 0.1,
        init_scale: float = 1.0,
        device: str | torch.device = "cpu",
    ) -> "GaussianModel":
        """Initialise from a point cloud as 3DGS does: isotropic scale = sqrt of the mean
        squared distance to the 3 nearest neighbours (clamped at 1e-7; the search is
        :func:`init_knn`'s), identity rotation, opacity 0.1, SH DC from the colour (rgb in [0, 1])."""
        # copies: training updates the parameters in place, and on the CPU ``.to(device)`` would
        # otherwise hand the caller's arrays (e.g. ``scene.points``) to the optimizer
        xyz = torch.tensor(np.asarray(xyz), dtype=torch.float32)
        rgb = torch.tensor(np.asarray(rgb), dtype=torch.float32)
        n = xyz.shape[0]
        if n == 0:
            raise ValueError("cannot initialise a GaussianModel from an empty point cloud")
        d2 = torch.clamp_min(mean_sq_dist_3nn(xyz), 1e-7)
        log_scale = torch.log(torch.sqrt(d2) * init_scale)[:, None].repeat(1, 3)
        quats = torch.zeros(n, 4)
        quats[:, 0] = 1.0
        opac = torch.logit(torch.full((n,), float(init_opacity)))
        sh0 = rgb_to_sh(rgb)[:, None, :]
        shN = torch.zeros(n, num_sh_bases(sh_degree) - 1, 3)
        params = dict(means=xyz, scales=log_scale, quats=quats, opacities=opac, sh0=sh0, shN=shN)
        return cls({k_: v.to(device) for k_, v in params.items()}, sh_degree=sh_degree)

    # ------------------------------------------------------------------ activations
    @property
    def means(self) -> torch.Tensor:
        return self.params["means"]

    @property
    def scales(self) -> torch.Tensor:
        """Activated scales (exp of the stored log-scales)."""
        return torch.exp(self.params["scales"])

    @property
    def quats(self) -> torch.Tensor:
        """Normalised quaternions (w, x, y, z)."""
        return torch.nn.functional.normalize(self.params["quats"], dim=-1)

    @property
    def opacities(self) -> torch.Tensor:
        """Activated opacities in (0, 1)."""
        return torch.sigmoid(self.params["opacities"])

    @property
    def sh(self) -> torch.Tensor:
        """All SH coefficients (N, K, 3)."""
        return torch.cat([self.params["sh0"], self.params["shN"]], dim=1)

    @property
    def num_gaussians(self) -> int:
        return int(self.params["means"].shape[0])

    def __len__(self) -> int:
        return self.num_gaussians

    @property
    def device(self) -> torch.device:
        return self.params["means"].device

    def to(self, device: str | torch.device) -> "GaussianModel":
        return GaussianModel({k: v.detach().to(device) for k, v in self.params.items()}, self.sh_degree)

    def detached_copy(self) -> "GaussianModel":
        return GaussianModel({k: v.detach().clone() for k, v in self.params.items()}, self.sh_degree)

    def select(self, mask_or_index: torch.Tensor) -> "GaussianModel":
        """A new model with the Gaussians picked by a boolean mask or an index tensor."""
        return GaussianModel({k: v.detach()[mask_or_index].clone() for k, v in self.params.items()}, self.sh_degree)

    # ------------------------------------------------------------------ PLY I/O
    def ply_attribute_names(self) -> list[str]:
        n_rest = 3 * (num_sh_bases(self.sh_degree) - 1)
        names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        names += [f"f_rest_{i}" for i in range(n_rest)]
        names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
        return names

    def to_ply_array(self) -> np.ndarray:
        """Structured array in the original 3DGS layout (float32)."""
        p = {k: v.detach().float().cpu() for k, v in self.params.items()}
        n = self.num_gaussians
        # f_rest is stored channel-major: (N, 3, K-1) flattened, as upstream does.
        f_rest = p["shN"].transpose(1, 2).reshape(n, -1)
        cols = [p["means"], torch.zeros(n, 3), p["sh0"].reshape(n, 3), f_rest,
                p["opacities"].reshape(n, 1), p["scales"], p["quats"]]
        data = torch.cat(cols, dim=1).numpy().astype(np.float32)
        names = self.ply_attribute_names()
        arr = np.empty(n, dtype=[(name, "f4") for name in names])
        for i, name in enumerate(names):
            arr[name] = data[:, i]
        return arr

    def save_ply(self, path: str | Path) -> Path:
        """Write the standard 3DGS PLY (binary little endian). Written to a temporary file
        first and renamed, so an interrupted write never leaves a truncated model."""
        from plyfile import PlyData, PlyElement

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        PlyData([PlyElement.describe(self.to_ply_array(), "vertex")]).write(str(tmp))
        tmp.replace(path)
        return path

    @classmethod
    def load_ply(cls, path: str | Path, device: str | torch.device = "cpu") -> "GaussianModel":
        """Read a 3DGS PLY; any SH degree 0-3 (inferred from the f_rest count)."""
        from plyfile import PlyData

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such PLY file")
        try:
            ply = PlyData.read(str(path))
            v = ply["vertex"]
        except Exception as exc:  # plyfile raises several types
            raise PlyFormatError(f"{path}: not a readable PLY file with a 'vertex' element ({exc})") from exc
        names = set(v.data.dtype.names or ())
        required = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
                    "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
        missing = [r for r in required if r not in names]
        if missing:
            raise PlyFormatError(f"{path}: not a 3DGS model, missing PLY properties {missing}")
        rest = sorted((n for n in names if n.startswith("f_rest_")), key=lambda s: int(s.split("_")[-1]))
        if len(rest) % 3:
            raise PlyFormatError(f"{path}: {len(rest)} f_rest properties is not a multiple of 3")
        k = 1 + len(rest) // 3
        try:
            degree = _degree_from_bases(k)
        except ValueError as exc:
            raise PlyFormatError(f"{path}: {exc}") from exc

        def col(*ns: str) -> torch.Tensor:
            return torch.as_tensor(np.stack([np.asarray(v[n], dtype=np.float32) for n in ns], axis=1))

        n = len(v.data)
        shN = col(*rest).reshape(n, 3, k - 1).transpose(1, 2).contiguous() if rest else torch.zeros(n, 0, 3)
        params = dict(
            means=col("x", "y", "z"),
            scales=col("scale_0", "scale_1", "scale_2"),
            quats=col("rot_0", "rot_1", "rot_2", "rot_3"),
            opacities=col("opacity")[:, 0],
            sh0=col("f_dc_0", "f_dc_1", "f_dc_2")[:, None, :],
            shN=shN,
        )
        for name, t in params.items():
            if not torch.isfinite(t).all():
                raise PlyFormatError(f"{path}: non-finite values in '{name}'")
        return cls({k_: t.to(device) for k_, t in params.items()}, sh_degree=degree)

    def ply_num_bytes(self) -> int:
        """Bytes the standard PLY takes (62 float32 per Gaussian at degree 3, + header)."""
        return self.num_gaussians * 4 * len(self.ply_attribute_names())


def file_size_bytes(path: str | Path) -> int:
    """Size on disk of a file, or of every file below a directory (a codec's bitstream)."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
