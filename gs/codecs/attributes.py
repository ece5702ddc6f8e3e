"""A GaussianModel as one attribute matrix with the colour in YUV, and back.

Columns: dc (3) | rest_y, rest_u, rest_v (K-1 each, channel-major as the PLY) | opacity |
log-scales (3) | raw quaternion (4); RGB -> YUV (BT.601 analog) on the DC and every SH-rest
triplet, and back with the exact inverse of the forward matrix. HGSC's attribute layout.
"""

from __future__ import annotations

import numpy as np
import torch

from gs.codecs.quantize import ROWS
from gs.model import GaussianModel, num_sh_bases

# RGB -> YUV (BT.601 analog) and its exact inverse
YUV = np.array([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])
YUV_INV = np.linalg.inv(YUV)


def attribute_layout(sh_degree: int) -> dict[str, slice]:
    """Column groups of the attribute matrix: dc (3) | rest_y, rest_u, rest_v (K-1 each,
    channel-major as the PLY) | opacity | scale (3) | rotation (4)."""
    r = num_sh_bases(sh_degree) - 1
    o = 3 + 3 * r
    return {"dc": slice(0, 3), "rest_y": slice(3, 3 + r), "rest_u": slice(3 + r, 3 + 2 * r),
            "rest_v": slice(3 + 2 * r, o), "opacity": slice(o, o + 1), "scale": slice(o + 1, o + 4),
            "rotation": slice(o + 4, o + 8)}


def _mix3(m: np.ndarray, x: np.ndarray) -> np.ndarray:
    """out[:, c] = sum_j m[c, j] x[:, j] for x (N, 3, ...) (a colour transform per SH band)."""
    return np.stack([m[c, 0] * x[:, 0] + m[c, 1] * x[:, 1] + m[c, 2] * x[:, 2] for c in range(3)], axis=1)


def attribute_matrix(model: GaussianModel) -> np.ndarray:
    """(N, D) float32 attributes with the colour in YUV (the column order of :func:`attribute_layout`)."""
    p = {k: v.detach().double().cpu().numpy() for k, v in model.params.items()}
    n = model.num_gaussians
    dc = p["sh0"].reshape(n, 3) @ YUV.T
    rest = _mix3(YUV, np.ascontiguousarray(p["shN"].transpose(0, 2, 1))).reshape(n, -1)  # channel-major
    cols = [dc, rest, p["opacities"].reshape(n, 1), p["scales"], p["quats"]]
    return np.concatenate(cols, axis=1).astype(np.float32)


class ModelRows:
    """The parameter arrays of a GaussianModel, filled block by block from YUV attribute rows
    (the inverse of :func:`attribute_matrix`); float64 temporaries stay block-sized."""

    def __init__(self, n: int, sh_degree: int) -> None:
        self.sh_degree = sh_degree
        self.k1 = num_sh_bases(sh_degree) - 1
        self.lay = attribute_layout(sh_degree)
        self.dc = np.empty((n, 1, 3), dtype=np.float32)
        self.rest = np.empty((n, self.k1, 3), dtype=np.float32)
        self.opacities = np.empty(n, dtype=np.float32)
        self.scales = np.empty((n, 3), dtype=np.float32)
        self.quats = np.empty((n, 4), dtype=np.float32)

    def put(self, r: int, blk: np.ndarray) -> None:
        """Rows r .. r + len(blk) from the float32 YUV attribute rows ``blk``. The colour
        transform is the arithmetic of :func:`_mix3` (the same products and sums in the same
        order) for the DC too: a BLAS matmul may fuse multiply-adds and picks its kernel by
        CPU, and the decoder's output must not depend on the machine."""
        m, k1, lay = len(blk), self.k1, self.lay
        a = blk.astype(np.float64)
        d0, d1, d2 = a[:, 0], a[:, 1], a[:, 2]
        x0, x1, x2 = (np.ascontiguousarray(a[:, 3 + j * k1:3 + (j + 1) * k1]) for j in range(3))
        for c in range(3):
            self.dc[r:r + m, 0, c] = YUV_INV[c, 0] * d0 + YUV_INV[c, 1] * d1 + YUV_INV[c, 2] * d2
            if k1:
                t = YUV_INV[c, 0] * x0
                t += YUV_INV[c, 1] * x1
                t += YUV_INV[c, 2] * x2
                self.rest[r:r + m, :, c] = t
        # opacity, scales, quaternion: float32 as stored
        self.opacities[r:r + m] = blk[:, lay["opacity"].start]
        self.scales[r:r + m] = blk[:, lay["scale"]]
        self.quats[r:r + m] = blk[:, lay["rotation"]]

    def model(self, xyz: np.ndarray, device: str | torch.device) -> GaussianModel:
        def t(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)

        return GaussianModel(dict(means=t(xyz), scales=t(self.scales), quats=t(self.quats),
                                  opacities=t(self.opacities), sh0=t(self.dc), shN=t(self.rest)), self.sh_degree)


def model_from_attributes(xyz: np.ndarray, attrs: np.ndarray, sh_degree: int,
                          device: str | torch.device = "cpu", rows: np.ndarray | None = None) -> GaussianModel:
    """Inverse of :func:`attribute_matrix` (YUV -> RGB) with positions ``xyz``; ``rows`` (optional)
    takes the Gaussians ``attrs[rows]`` (in that order) without copying ``attrs`` first."""
    n = len(xyz)
    out = ModelRows(n, sh_degree)
    for r in range(0, n, ROWS):
        out.put(r, attrs[r:r + ROWS] if rows is None else attrs[rows[r:r + ROWS]])
    return out.model(xyz, device)

__all__ = ["YUV", "YUV_INV", "ModelRows", "attribute_layout", "attribute_matrix", "model_from_attributes"]
