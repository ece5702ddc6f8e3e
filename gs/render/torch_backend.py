"""Pure-PyTorch tile-based rasterizer: the reference backend (CPU and CUDA, autograd).

Image formation follows the original 3DGS CUDA rasterizer (``cuda_rasterizer/forward.cu``):

- EWA projection with the Jacobian of the perspective map, evaluated at the camera-space
  mean whose x/z, y/z are clamped to the frustum widened by 30% (1.3 tan(fov/2) for a
  centred principal point; the general form is gsplat's ``(W - cx)/fx + 0.3 tan_fovx``).
- 2D covariance + 0.3 px^2 on the diagonal; screen radius = ceil(3 sqrt(max eigenvalue)).
- Culled: behind the near plane (z <= 0.01), singular 2D covariance, or no pixel of the
  image within reach (see "exact footprint" below); culled Gaussians get radius 0.
- Pixel centres at (i + 0.5, j + 0.5) with means2d = (fx x/z + cx, fy y/z + cy) (the same
  as upstream's ndc2Pix convention and gsplat's).
- Front-to-back compositing in view-depth order: alpha = min(0.99, o exp(-0.5 d^T S^-1 d)),
  contributions with alpha < 1/255 skipped, a pixel stops before the Gaussian that would take
  its transmittance below 1e-4, background added as T_final * bg.

Tiles: Gaussians are binned into 16x16 pixel tiles (8x8 on CPU, where it is faster) and each tile composites only the
depth-sorted Gaussians that overlap it, vectorised over batches of tiles (padded to the
batch's longest list; tiles are grouped by list length so padding stays small). The binning
uses the *exact* footprint of each Gaussian -- the axis-aligned box holding every pixel
where alpha can reach 1/255, i.e. Mahalanobis radius sqrt(2 ln(255 o)) (gsplat's
opacity-aware box) -- so the tile result equals evaluating every Gaussian at every pixel.
Upstream bins by the 3-sigma square instead, which drops faint (alpha < 0.011) tails of
opaque Gaussians at tile borders; we do not reproduce that artefact. Differences from
gsplat: gsplat clamps alpha at 0.999 instead of 0.99.

``iter_tile_chunks`` exposes the per-pixel intermediates (Gaussian ids, alphas and
transmittances of each tile) for per-pixel statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import torch

from gs.render.base import Camera, RenderOutput
from gs.render.sh import sh_to_color

NEAR_PLANE = 0.01
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
T_MIN = 1e-4
EPS2D = 0.3
TILE = 16
TILE_CPU = 8
# Elements (tiles x Gaussians-per-tile x pixels-per-tile) composited in one batch.
CHUNK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------- geometry
def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (N,3,3) from normalised quaternions (N,4) in w,x,y,z order."""
    w, x, y, z = quats.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(quats.shape[:-1] + (3, 3))


@dataclass
class Projection:
    """Per-Gaussian screen-space quantities (all (N,...))."""

    means2d: torch.Tensor  # (N,2) pixels
    conics: torch.Tensor  # (N,3) inverse 2D covariance (a, b, c): [[a, b], [b, c]]
    cov2d: torch.Tensor  # (N,3) dilated 2D covariance (xx, xy, yy)
    depths: torch.Tensor  # (N,) camera-space z
    radii: torch.Tensor  # (N,) int, 0 = culled
    rendered: torch.Tensor  # (N,) bool
    tile_min: torch.Tensor  # (N,2) int64 first tile (x, y) touched (valid where rendered)
    tile_max: torch.Tensor  # (N,2) int64 last tile (x, y) touched, inclusive


def project(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    camera: Camera,
    *,
    near_plane: float = NEAR_PLANE,
    eps2d: float = EPS2D,
    tile_size: int = TILE,
) -> Projection:
    dtype, device = means.dtype, means.device
    viewmat = camera.viewmat.to(device=device, dtype=dtype)
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    fx, fy, cx, cy = float(camera.fx), float(camera.fy), float(camera.cx), float(camera.cy)
    W, H = int(camera.width), int(camera.height)

    p = means @ R.T + t
    z = p[:, 2]
    in_front = z > near_plane
    zs = torch.where(in_front, z, torch.ones_like(z))  # keeps culled rows finite
    x, y = p[:, 0], p[:, 1]
    means2d = torch.stack([fx * x / zs + cx, fy * y / zs + cy], dim=-1)

    # Jacobian at the frustum-clamped point (upstream computeCov2D; no gradient through the
    # clamped coordinate where it is clamped, as upstream's x_grad_mul).
    tan_fovx, tan_fovy = 0.5 * W / fx, 0.5 * H / fy
    tx = zs * torch.clamp(x / zs, -(cx / fx + 0.3 * tan_fovx), (W - cx) / fx + 0.3 * tan_fovx)
    ty = zs * torch.clamp(y / zs, -(cy / fy + 0.3 * tan_fovy), (H - cy) / fy + 0.3 * tan_fovy)
    zero = torch.zeros_like(zs)
    J = torch.stack(
        [fx / zs, zero, -fx * tx / (zs * zs), zero, fy / zs, -fy * ty / (zs * zs)], dim=-1
    ).reshape(-1, 2, 3)
    # Sigma2D = J R Rq S S Rq^T R^T J^T = A A^T with A = J R Rq diag(s).
    # Normalised here as gsplat and upstream do, so the quaternion gradient is the same
    # (tangent to the unit sphere) on every backend.
    A = (J @ R) @ quat_to_rotmat(torch.nn.functional.normalize(quats, dim=-1)) * scales[:, None, :]
    cov = A @ A.transpose(1, 2)
    a = cov[:, 0, 0] + eps2d
    b = cov[:, 0, 1]
    c = cov[:, 1, 1] + eps2d
    det = a * c - b * b
    ok = in_front & (det > 0)
    det_s = torch.where(ok, det, torch.ones_like(det))
    conics = torch.stack([c / det_s, -b / det_s, a / det_s], dim=-1)

    with torch.no_grad():
        mid = 0.5 * (a + c)
        lam1 = mid + torch.sqrt(torch.clamp_min(mid * mid - det, 0.1))
        radius = torch.ceil(3.0 * torch.sqrt(torch.clamp_min(lam1, 0.0)))
        # Exact footprint: alpha >= 1/255 needs Mahalanobis distance^2 <= 2 ln(255 o).
        o = opacities.detach()
        m2 = 2.0 * torch.log(torch.clamp_min(o * 255.0, 1e-30))
        ok = ok & (m2 > 0)
        m = torch.sqrt(torch.clamp_min(m2, 0.0))
        ex = m * torch.sqrt(torch.clamp_min(a, 0.0))
        ey = m * torch.sqrt(torch.clamp_min(c, 0.0))
        u, v = means2d[:, 0].detach(), means2d[:, 1].detach()
        # Pixel columns i with i + 0.5 in [u - ex, u + ex].
        i0 = torch.ceil(u - ex - 0.5)
        i1 = torch.floor(u + ex - 0.5)
        j0 = torch.ceil(v - ey - 0.5)
        j1 = torch.floor(v + ey - 0.5)
        ok = ok & (i1 >= 0) & (i0 <= W - 1) & (j1 >= 0) & (j0 <= H - 1) & (i0 <= i1) & (j0 <= j1)
        ok = ok & torch.isfinite(u) & torch.isfinite(v) & torch.isfinite(ex) & torch.isfinite(ey)
        i0 = torch.clamp(torch.nan_to_num(i0), 0, W - 1)
        i1 = torch.clamp(torch.nan_to_num(i1), 0, W - 1)
        j0 = torch.clamp(torch.nan_to_num(j0), 0, H - 1)
        j1 = torch.clamp(torch.nan_to_num(j1), 0, H - 1)
        tile_min = torch.stack([i0, j0], -1).long() // tile_size
        tile_max = torch.stack([i1, j1], -1).long() // tile_size
        radii = torch.where(ok, torch.nan_to_num(radius).clamp_min(1.0), torch.zeros_like(radius)).to(torch.int32)
    return Projection(
        means2d=means2d,
        conics=conics,
        cov2d=torch.stack([a, b, c], dim=-1),
        depths=z,
        radii=radii,
        rendered=ok,
        tile_min=tile_min,
        tile_max=tile_max,
    )


# --------------------------------------------------------------------------- binning
@dataclass
class TileBins:
    """Gaussian-tile pairs sorted by (tile, depth)."""

    gauss: torch.Tensor  # (P,) int64 Gaussian index of each pair
    start: torch.Tensor  # (n_tiles,) first pair of each tile
    count: torch.Tensor  # (n_tiles,) number of pairs of each tile
    tiles_x: int
    tiles_y: int


def bin_tiles(proj: Projection, width: int, height: int, tile_size: int = TILE) -> TileBins:
    device = proj.depths.device
    tiles_x = (width + tile_size - 1) // tile_size
    tiles_y = (height + tile_size - 1) // tile_size
    n_tiles = tiles_x * tiles_y
    with torch.no_grad():
        ids = torch.nonzero(proj.rendered).squeeze(1)
        if ids.numel() == 0:
            z = torch.zeros(n_tiles, dtype=torch.long, device=device)
            return TileBins(torch.zeros(0, dtype=torch.long, device=device), z, z.clone(), tiles_x, tiles_y)
        tmin = proj.tile_min[ids]
        tmax = proj.tile_max[ids]
        span = tmax - tmin + 1  # (M,2)
        n_pairs = span[:, 0] * span[:, 1]
        total = int(n_pairs.sum())
        rep = torch.repeat_interleave(torch.arange(ids.numel(), device=device), n_pairs, output_size=total)
        first = torch.cumsum(n_pairs, 0) - n_pairs
        local = torch.arange(total, device=device) - first[rep]
        w = span[rep, 0]
        tx = tmin[rep, 0] + local % w
        ty = tmin[rep, 1] + local // w
        tile = ty * tiles_x + tx
        # Depth rank of each rendered Gaussian (stable for ties: the lower index first).
        order = torch.sort(proj.depths.detach()[ids], stable=True).indices
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel(), device=device)
        key = tile * ids.numel() + rank[rep]
        key_sorted, perm = torch.sort(key)
        gauss = ids[rep[perm]]
        count = torch.bincount(tile, minlength=n_tiles)
        start = torch.cumsum(count, 0) - count
    return TileBins(gauss, start, count, tiles_x, tiles_y)


# --------------------------------------------------------------------------- compositing
@dataclass
class TileChunk:
    """Per-pixel intermediates of a batch of C tiles, each with up to L Gaussians.

    ``gauss`` (C,L) Gaussian ids in depth order, -1 for padding; ``pixels`` (C,P) flat pixel
    index (y*W + x), -1 for pixels of edge tiles that lie outside the image; ``alpha`` (C,L,P)
    the alphas actually composited (0 where skipped, padded or after the pixel stopped);
    ``trans`` (C,L,P) the transmittance in front of each Gaussian (T_k); so the blend weight
    of Gaussian gauss[c,l] at pixel pixels[c,p] is alpha * trans."""

    tiles: torch.Tensor
    gauss: torch.Tensor
    pixels: torch.Tensor
    alpha: torch.Tensor
    trans: torch.Tensor


def _tiles_by_length(bins) -> tuple[torch.Tensor, torch.Tensor]:
    """Occupied tiles and their list lengths, longest first: consecutive tiles of a batch then
    have similar lengths (little padding)."""
    occupied = torch.nonzero(bins.count > 0).squeeze(1)
    counts = bins.count[occupied]
    order = torch.argsort(counts, descending=True)
    return occupied[order], counts[order]


def iter_tile_chunks(
    proj: Projection,
    opacities: torch.Tensor,
    bins: TileBins,
    width: int,
    height: int,
    *,
    tile_size: int = TILE,
    alpha_max: float = ALPHA_MAX,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> Iterator[TileChunk]:
    """Yield the compositing intermediates tile batch by tile batch (differentiable)."""
    device = proj.depths.device
    dtype = proj.means2d.dtype
    npix = tile_size * tile_size
    occupied, counts = _tiles_by_length(bins)
    if occupied.numel() == 0:
        return
    counts_l = counts.tolist()
    local = torch.arange(npix, device=device)
    lx, ly = local % tile_size, local // tile_size
    i = 0
    n = occupied.numel()
    while i < n:
        L = counts_l[i]
        C = max(1, min(n - i, chunk_elements // max(1, L * npix)))
        tiles = occupied[i:i + C]
        cnt = counts[i:i + C]
        i += C
        ar = torch.arange(L, device=device)
        valid = ar[None, :] < cnt[:, None]  # (C,L)
        idx = bins.start[tiles][:, None] + ar[None, :]
        idx = torch.where(valid, idx, torch.zeros_like(idx))
        g = torch.where(valid, bins.gauss[idx], torch.full_like(idx, -1))
        gs = g.clamp_min(0)
        tx = tiles % bins.tiles_x
        ty = tiles // bins.tiles_x
        px = (tx[:, None] * tile_size + lx[None, :])  # (C,P) int
        py = (ty[:, None] * tile_size + ly[None, :])
        inside = (px < width) & (py < height)
        pixels = torch.where(inside, py * width + px, torch.full_like(px, -1))

        mean = proj.means2d[gs]  # (C,L,2)
        con = proj.conics[gs]  # (C,L,3)
        dx = (px.to(dtype) + 0.5)[:, None, :] - mean[..., 0:1]  # (C,L,P)
        dy = (py.to(dtype) + 0.5)[:, None, :] - mean[..., 1:2]
        sigma = 0.5 * (con[..., 0:1] * dx * dx + con[..., 2:3] * dy * dy) + con[..., 1:2] * dx * dy
        alpha = torch.clamp_max(opacities[gs][..., None] * torch.exp(-sigma), alpha_max)
        with torch.no_grad():
            keep = valid[..., None] & (sigma >= 0) & (alpha >= ALPHA_MIN)
        alpha = torch.where(keep, alpha, torch.zeros_like(alpha))
        with torch.no_grad():
            # A pixel stops before the Gaussian that takes T below 1e-4; T is monotone, so the
            # kept ones are exactly those whose inclusive transmittance stays >= 1e-4.
            t_incl = torch.cumprod(1.0 - alpha, dim=1)
            keep = t_incl >= T_MIN
        alpha = torch.where(keep, alpha, torch.zeros_like(alpha))
        one_minus = 1.0 - alpha
        trans = torch.cumprod(one_minus, dim=1) / one_minus  # exclusive: alpha <= 0.99
        yield TileChunk(tiles=tiles, gauss=g, pixels=pixels, alpha=alpha, trans=trans)


class _Composite(torch.autograd.Function):
    """Fused compositing of a batch of tiles with a hand-written backward (the autograd graph
    of the same computation would keep ~10 (C,L,P) tensors per batch and run ~3x slower).

    sigma is a quadratic in the pixel position, evaluated as one batched matmul of per-entry
    coefficients ``coef`` (C,L,6) with per-pixel monomials ``mono`` (C,6,P) of tile-local
    coordinates (small, so the expansion loses no precision that matters)."""

    @staticmethod
    def forward(ctx, coef, opac, feats, mono, valid, alpha_max: float):
        sigma = torch.bmm(coef, mono)  # (C,L,P)
        alpha = torch.exp(sigma.neg_()).mul_(opac[..., None]).clamp_max_(alpha_max)
        alpha.masked_fill_(~valid[..., None] | (alpha < ALPHA_MIN), 0.0)
        one_minus = 1.0 - alpha
        t_incl = torch.cumprod(one_minus, dim=1)
        stop = t_incl < T_MIN
        alpha.masked_fill_(stop, 0.0)
        one_minus.masked_fill_(stop, 1.0)
        trans = torch.cumprod(one_minus, dim=1).div_(one_minus)  # exclusive T
        w = alpha * trans
        col = torch.bmm(w.transpose(1, 2), feats)  # (C,P,D)
        acc = w.sum(1)  # (C,P)
        ctx.save_for_backward(opac, feats, mono, alpha, trans)
        ctx.alpha_max = alpha_max
        return col, acc

    @staticmethod
    def backward(ctx, g_col, g_acc):
        opac, feats, mono, alpha, trans = ctx.saved_tensors
        w = alpha * trans
        g_feats = torch.bmm(w, g_col)  # (C,L,D)
        G = torch.bmm(feats, g_col.transpose(1, 2))  # dL/dw (C,L,P)
        if g_acc is not None:
            G.add_(g_acc[:, None, :])
        # dL/dalpha_k = T_k G_k - sum_{j>k} w_j G_j / (1 - alpha_k)
        wG = w.mul_(G)
        behind = torch.cumsum(wG, dim=1)
        behind = behind[:, -1:] - behind  # exclusive suffix sums
        g_alpha = (trans * G).sub_(behind.div_(1.0 - alpha))
        # alpha = o exp(-sigma) where it is neither clamped nor skipped (else constant).
        v = g_alpha.mul_(alpha).masked_fill_(alpha >= ctx.alpha_max, 0.0)
        g_opac = v.sum(-1) / opac.clamp_min(1e-30)
        g_coef = torch.bmm(v, mono.transpose(1, 2)).neg_()  # dsigma = -v
        return g_coef, g_opac, g_feats, None, None, None


def _composite_autograd(proj, opacities, feats, bins, width, height, *, tile_size, chunk_elements):
    """The same as :func:`_composite_fused` through plain autograd on ``iter_tile_chunks``
    (slower, more memory; kept as the readable reference of the fused backward)."""
    for ch in iter_tile_chunks(proj, opacities, bins, width, height, tile_size=tile_size,
                               chunk_elements=chunk_elements):
        w = ch.alpha * ch.trans  # (C,L,P)
        f = feats[ch.gauss.clamp_min(0)]  # (C,L,D)
        yield ch.pixels, torch.bmm(w.transpose(1, 2), f), w.sum(1)


def _sigma_coefficients(mean: torch.Tensor, con: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """(C,L,6) coefficients of sigma over the monomials (X^2, XY, Y^2, X, Y, 1) of pixel
    coordinates relative to the tile centre ``centre`` (C,2)."""
    u = mean[..., 0] - centre[:, None, 0]
    v = mean[..., 1] - centre[:, None, 1]
    a, b, c = con.unbind(-1)
    return torch.stack([0.5 * a, b, 0.5 * c, -(a * u + b * v), -(b * u + c * v),
                        0.5 * a * u * u + b * u * v + 0.5 * c * v * v], dim=-1)


def _composite_fused(proj, opacities, feats, bins, width, height, *, tile_size, alpha_max, chunk_elements):
    """Yield (pixels (C,P), col (C,P,D), acc (C,P)) for every batch of occupied tiles."""
    device = proj.depths.device
    dtype = proj.means2d.dtype
    npix = tile_size * tile_size
    occupied, counts = _tiles_by_length(bins)
    if occupied.numel() == 0:
        return
    counts_l = counts.tolist()
    local = torch.arange(npix, device=device)
    lx = (local % tile_size).to(dtype) + 0.5 - 0.5 * tile_size
    ly = (local // tile_size).to(dtype) + 0.5 - 0.5 * tile_size
    mono1 = torch.stack([lx * lx, lx * ly, ly * ly, lx, ly, torch.ones_like(lx)])  # (6,P)
    lxi, lyi = local % tile_size, local // tile_size
    i, n = 0, occupied.numel()
    while i < n:
        L = counts_l[i]
        C = max(1, min(n - i, chunk_elements // max(1, L * npix)))
        tiles, cnt = occupied[i:i + C], counts[i:i + C]
        i += C
        ar = torch.arange(L, device=device)
        valid = ar[None, :] < cnt[:, None]
        idx = torch.where(valid, bins.start[tiles][:, None] + ar[None, :], torch.zeros_like(valid, dtype=torch.long))
        g = torch.where(valid, bins.gauss[idx], torch.zeros_like(idx))
        tx, ty = tiles % bins.tiles_x, tiles // bins.tiles_x
        centre = torch.stack([tx, ty], -1).to(dtype) * tile_size + 0.5 * tile_size
        coef = _sigma_coefficients(proj.means2d[g], proj.conics[g], centre)
        px = tx[:, None] * tile_size + lxi[None, :]
        py = ty[:, None] * tile_size + lyi[None, :]
        pixels = torch.where((px < width) & (py < height), py * width + px, torch.full_like(px, -1))
        mono = mono1.expand(C, 6, npix)
        col, acc = _Composite.apply(coef, opacities[g], feats[g], mono, valid, alpha_max)
        yield pixels, col, acc


def _features(
    means: torch.Tensor, colors: torch.Tensor, camera: Camera, sh_degree: int | None, ids: torch.Tensor
) -> torch.Tensor:
    """Per-Gaussian features of the Gaussians ``ids``: SH colour or the given columns."""
    if sh_degree is None:
        if colors.dim() != 2:
            raise ValueError(f"with sh_degree=None colors must be (N,D), got {tuple(colors.shape)}")
        return colors[ids]
    if colors.dim() != 3:
        raise ValueError(f"with sh_degree={sh_degree} colors must be SH (N,K,3), got {tuple(colors.shape)}")
    center = camera.center.to(device=means.device, dtype=means.dtype)
    return sh_to_color(sh_degree, colors[ids], means[ids] - center)


def rasterize(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    colors: torch.Tensor,
    camera: Camera,
    *,
    sh_degree: int | None,
    background: torch.Tensor | None = None,
    **options: Any,
) -> RenderOutput:
    """Render one view (see the module docstring). Options: ``tile_size`` (16 on CUDA, 8 on CPU),
    ``chunk_elements``, ``fused`` (True: hand-written backward; False: plain autograd), ``near_plane`` (0.01), ``eps2d`` (0.3), ``render_depth`` (adds
    extras["depth"] (H,W,1) = sum of blend weight x view depth, unnormalised)."""
    # 8x8 tiles run ~1.5-2x faster on CPU (less padding per small splat), 16x16 on CUDA;
    # the image does not depend on it (exact footprints).
    tile_size = int(options.get("tile_size", TILE if means.device.type == "cuda" else TILE_CPU))
    chunk_elements = int(options.get("chunk_elements", CHUNK_ELEMENTS))
    W, H = int(camera.width), int(camera.height)
    device, dtype = means.device, means.dtype
    proj = project(
        means, quats, scales, opacities, camera,
        near_plane=float(options.get("near_plane", NEAR_PLANE)),
        eps2d=float(options.get("eps2d", EPS2D)), tile_size=tile_size,
    )
    means2d = proj.means2d
    if torch.is_grad_enabled() and means2d.requires_grad:
        means2d.retain_grad()

    ids = torch.nonzero(proj.rendered).squeeze(1)
    feats_r = _features(means, colors, camera, sh_degree, ids)  # (M,D)
    D = feats_r.shape[1]
    if options.get("render_depth"):
        feats_r = torch.cat([feats_r, proj.depths[ids, None]], dim=1)
    # Scatter the rendered Gaussians' features into an (N,D) table for gathering by id.
    feats = torch.zeros(means.shape[0], feats_r.shape[1], dtype=feats_r.dtype, device=device)
    feats = feats.index_copy(0, ids, feats_r)

    bins = bin_tiles(proj, W, H, tile_size)
    out = torch.zeros(H * W + 1, feats.shape[1] + 1, dtype=feats.dtype, device=device)
    if options.get("fused", True):
        chunks = _composite_fused(proj, opacities, feats, bins, W, H, tile_size=tile_size,
                                  alpha_max=ALPHA_MAX, chunk_elements=chunk_elements)
    else:
        chunks = _composite_autograd(proj, opacities, feats, bins, W, H, tile_size=tile_size,
                                     chunk_elements=chunk_elements)
    for pixels, col, acc in chunks:
        vals = torch.cat([col, acc[..., None]], dim=-1).reshape(-1, col.shape[-1] + 1)
        pix = pixels.reshape(-1)
        pix = torch.where(pix >= 0, pix, torch.full_like(pix, H * W))  # dump row
        out = out.index_add(0, pix, vals)
    out = out[: H * W].reshape(H, W, -1)
    alpha = out[..., -1:]
    image = out[..., :D]
    if background is not None:
        bg = background.to(device=device, dtype=image.dtype).reshape(1, 1, -1)
        image = image + (1.0 - alpha) * bg
    extras: dict[str, Any] = {"depths": proj.depths.detach()}
    if options.get("render_depth"):
        extras["depth"] = out[..., D:D + 1]
    if torch.is_grad_enabled() and not image.requires_grad:
        # Nothing visible: keep the outputs connected to the inputs so backward still runs.
        link = [t.sum() for t in (means2d, opacities, colors, scales, quats) if t.requires_grad]
        if link:
            zero = 0.0 * torch.stack(link).sum()
            image, alpha = image + zero, alpha + zero
    return RenderOutput(
        image=image,
        alpha=alpha,
        means2d=means2d,
        radii=proj.radii,
        grad_to_ndc=camera.ndc_scale.to(device),
        extras=extras,
    )
