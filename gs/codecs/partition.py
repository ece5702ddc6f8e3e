"""Deterministic partitions of integer grid points into levels of detail, and the
nearest-reference search that predicts one level from the levels below it.

:func:`kd_leaves` splits the points into KD-tree blocks (axis of largest variance, split at
the rank median in stable order: balanced leaves, no endless loop on duplicate coordinates);
:func:`fps_select` picks a fraction of every leaf by farthest point sampling from the leaf's
first point on exact integer squared distances; :func:`lod_partition` combines them into
anchors / LoD1 / LoD2. Everything is a function of the coordinates only and runs as torch ops
on any device with the same result, so a decoder rebuilds the encoder's partition from the
decoded geometry.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _leaf_tensors(q: torch.Tensor, max_leaf: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`kd_leaves` on a (N, 3) int64 tensor, on its device; returns tensors."""
    n = len(q)
    dev = q.device
    order = torch.arange(n, device=dev)
    starts = torch.tensor([0, n], dtype=torch.int64, device=dev)
    if n == 0:
        return order, starts
    kbits = max(1, int(q.max()).bit_length())
    # one contiguous vector per axis; int32 (squares fit) moves half the bytes per level
    small = kbits <= 15 and n < 2 ** 31
    planes = [q[:, a].to(torch.int32 if small else torch.int64).contiguous() for a in range(3)]
    if small:
        order = order.int()
    while True:
        lens = starts[1:] - starts[:-1]
        split = lens > max_leaf
        if not bool(split.any()):
            return order.long(), starts
        nseg = len(lens)
        mark = torch.zeros(n, dtype=torch.int64, device=dev)
        mark[starts[1:-1]] = 1
        seg = mark.cumsum(0)
        # exact int64 segment sums (prefix sums), then the same float64 arithmetic as always
        lo, hi = starts[:-1], starts[1:]
        s1, s2 = [], []
        for x in planes:
            z = torch.zeros(1, dtype=torch.int64, device=dev)
            c1 = torch.cat([z, x.cumsum(0, dtype=torch.int64)])
            c2 = torch.cat([z, (x * x).cumsum(0, dtype=torch.int64)])
            s1.append(c1[hi] - c1[lo])
            s2.append(c2[hi] - c2[lo])
        s1d, s2d = torch.stack(s1, 1).double(), torch.stack(s2, 1).double()
        var = s2d - s1d * s1d / lens.clamp_min(1).double()[:, None]  # n * variance
        axis = var.argmax(dim=1)  # first maximum on ties, like numpy
        ax = axis[seg]
        key = torch.where(ax == 0, planes[0], torch.where(ax == 1, planes[1], planes[2]))
        if not bool(split.all()):
            key = key * split[seg]  # leaves keep their order (key 0)
        ck = (seg << kbits) | key.long()
        if (nseg << kbits) < 2 ** 31:
            ck = ck.int()  # a narrower stable (radix) sort, same order
        perm = torch.sort(ck, stable=True).indices
        order = order[perm]
        planes = [x[perm] for x in planes]
        half = lo + lens // 2
        starts = torch.unique(torch.cat([starts, half[split]]))


def kd_leaves(q: np.ndarray, max_leaf: int, device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Deterministic KD-tree blocks: split every node with more than ``max_leaf`` points along
    its axis of largest variance at the rank median (stable order). Returns ``order`` (a
    permutation of the points, leaf by leaf) and ``starts`` (leaf boundaries, len L+1)."""
    qt = torch.from_numpy(np.asarray(q, dtype=np.int64)).to(device)
    order, starts = _leaf_tensors(qt, max_leaf)
    return order.cpu().numpy(), starts.cpu().numpy()


def _fps_tensors(q: torch.Tensor, order: torch.Tensor, starts: torch.Tensor, fraction: float) -> torch.Tensor:
    """:func:`fps_select` on tensors (one device); returns the selected point indices."""
    dev = q.device
    n = len(q)
    lens = starts[1:] - starts[:-1]
    L, B = len(lens), int(lens.max())
    m = torch.clamp_min(torch.floor(fraction * lens.double()).long(), 1)
    row = torch.repeat_interleave(torch.arange(L, device=dev), lens)
    col = torch.arange(n, device=dev) - starts[:-1][row]
    idx = torch.full((L, B), -1, dtype=torch.int64, device=dev)
    idx[row, col] = order
    pts = q[idx.clamp_min(0)]
    # one contiguous (L, B) plane per axis; float64 holds the integer squared distances exactly
    planes = [pts[..., a].double().contiguous() for a in range(3)]
    invalid = idx < 0
    m_max = int(m.max())
    curs = torch.zeros((m_max, L), dtype=torch.int64, device=dev)
    # on the CPU, blocks of leaves that stay in cache; on an accelerator, all at once
    chunk = L if dev.type != "cpu" else max(1, (1 << 17) // B)
    for c0 in range(0, L, chunk):
        c1 = min(L, c0 + chunk)
        x, y, z = (p[c0:c1] for p in planes)
        nl = c1 - c0
        ar = torch.arange(nl, device=dev)
        # dist = squared distance to the nearest chosen point; -1 marks chosen and padding
        # slots, so argmax = the farthest unchosen point (first index on ties)
        dist = torch.full((nl, B), math.inf, dtype=torch.float64, device=dev)
        dist[invalid[c0:c1]] = -1.0
        d, t = torch.empty_like(dist), torch.empty_like(dist)
        cur = torch.zeros(nl, dtype=torch.int64, device=dev)
        k_max = int(m[c0:c1].max())
        for k in range(k_max):
            curs[k, c0:c1] = cur
            dist[ar, cur] = -1.0
            if k + 1 == k_max:
                break
            torch.sub(x, x[ar, cur][:, None], out=d)
            d.mul_(d)
            torch.sub(y, y[ar, cur][:, None], out=t)
            d.addcmul_(t, t)
            torch.sub(z, z[ar, cur][:, None], out=t)
            d.addcmul_(t, t)
            torch.minimum(dist, d, out=dist)
            cur = dist.argmax(dim=1)
    active = torch.arange(m_max, device=dev)[:, None] < m[None, :]
    leaf = torch.arange(L, device=dev)[None, :].expand(m_max, L)
    return idx[leaf[active], curs[active]]


def fps_select(q: np.ndarray, order: np.ndarray, starts: np.ndarray, fraction: float,
               device: str | torch.device = "cpu") -> np.ndarray:
    """Farthest point sampling in every leaf at once: max(1, floor(fraction * n_leaf)) points,
    starting from the leaf's first point, exact integer squared distances, first index on
    ties. Returns a boolean mask over the points."""
    n = len(q)
    sel = np.zeros(n, dtype=bool)
    if n == 0:
        return sel
    dev = torch.device(device)
    t = torch.from_numpy(np.asarray(q, dtype=np.int64)).to(dev)
    pick = _fps_tensors(t, torch.from_numpy(np.asarray(order, dtype=np.int64)).to(dev),
                        torch.from_numpy(np.asarray(starts, dtype=np.int64)).to(dev), fraction)
    sel[pick.cpu().numpy()] = True
    return sel


def lod_partition(q: np.ndarray, block_size: int, anchor_fraction: float, lod_block_size: int,
                  lod1_fraction: float, device: str | torch.device = "cpu") -> np.ndarray:
    """(N,) uint8 labels 0 = anchor, 1 = LoD1, 2 = LoD2 of grid points ``q``: FPS picks
    ``anchor_fraction`` of every KD leaf of <= ``block_size`` points as anchors, then
    ``lod1_fraction`` of every leaf of <= ``lod_block_size`` remaining points as LoD1."""
    q = np.asarray(q, dtype=np.int64)
    n = len(q)
    if n == 0:
        return np.full(0, 2, dtype=np.uint8)
    dev = torch.device(device)
    qt = torch.from_numpy(q).to(dev)
    labels = torch.full((n,), 2, dtype=torch.uint8, device=dev)
    order, starts = _leaf_tensors(qt, block_size)
    anchors = _fps_tensors(qt, order, starts, anchor_fraction)
    labels[anchors] = 0
    rest = torch.nonzero(labels != 0)[:, 0]
    if len(rest):
        qr = qt[rest]
        order, starts = _leaf_tensors(qr, lod_block_size)
        labels[rest[_fps_tensors(qr, order, starts, lod1_fraction)]] = 1
    return labels.cpu().numpy()


def nearest_reference(ref_q: np.ndarray, query_q: np.ndarray, workers: int = -1) -> np.ndarray:
    """Index of the nearest reference grid point of every query (k = 1, spec §2.8); ``workers``
    threads for the queries (-1: every core; the answer does not depend on it)."""
    from scipy.spatial import cKDTree

    if len(query_q) == 0:
        return np.zeros(0, dtype=np.int64)
    _, idx = cKDTree(ref_q.astype(np.float64)).query(query_q.astype(np.float64), k=1, workers=workers)
    return np.asarray(idx, dtype=np.int64)

__all__ = ["kd_leaves", "fps_select", "lod_partition", "nearest_reference"]
