"""KD-tree blocks, farthest point sampling and the LoD partition (gs.codecs.partition),
against plain per-leaf reference implementations written from the spec (KD split at the rank
median, FPS from the leaf's first point)."""

import numpy as np
import pytest

from codec_helpers import grid_points

from gs.codecs.partition import fps_select, kd_leaves, lod_partition, nearest_reference


def ref_kd(q, idx, max_leaf):
    """Depth-first reference: split at the rank median along the axis of largest variance
    (n * variance = sum x^2 - (sum x)^2 / n, first axis on ties), stable order."""
    if len(idx) <= max_leaf:
        return [idx]
    pts = q[idx]
    s1 = pts.sum(0).astype(np.float64)
    s2 = (pts * pts).sum(0).astype(np.float64)
    axis = int(np.argmax(s2 - s1 * s1 / len(idx)))
    idx = idx[np.argsort(pts[:, axis], kind="stable")]
    half = len(idx) // 2
    return ref_kd(q, idx[:half], max_leaf) + ref_kd(q, idx[half:], max_leaf)


def ref_fps(q, leaf, m):
    """Farthest point sampling in one leaf from its first point, first index on ties."""
    pts = q[leaf]
    chosen = np.zeros(len(leaf), dtype=bool)
    dist = np.full(len(leaf), np.iinfo(np.int64).max)
    cur = 0
    for _ in range(m):
        chosen[cur] = True
        dist = np.minimum(dist, ((pts - pts[cur]) ** 2).sum(1))
        cur = int(np.argmax(np.where(chosen, -1, dist)))
    return leaf[chosen]


@pytest.mark.parametrize("duplicates", [False, True])
def test_kd_leaves_and_fps_match_the_reference(duplicates):
    rng = np.random.default_rng(5)
    q = rng.integers(0, 2 ** 15, size=(1500, 3))
    q[:, 2] //= 64  # a flat axis: many equal keys, so the tie order matters
    if duplicates:
        q[700:900] = q[0]
    order, starts = kd_leaves(q, 100)
    leaves = ref_kd(q, np.arange(len(q)), 100)
    assert np.array_equal(order, np.concatenate(leaves))
    assert np.array_equal(starts, np.concatenate([[0], np.cumsum([len(lf) for lf in leaves])]))
    sel = fps_select(q, order, starts, 0.2)
    want = np.zeros(len(q), dtype=bool)
    for lf in leaves:
        want[ref_fps(q, lf, max(1, int(np.floor(0.2 * len(lf)))))] = True
    assert np.array_equal(sel, want)


def test_lod_partition_is_deterministic_and_has_the_fractions():
    _, q = grid_points(6000, seed=3)
    a = lod_partition(q, 256, 0.10, 128, 0.33)
    b = lod_partition(q.copy(), 256, 0.10, 128, 0.33)
    assert np.array_equal(a, b)
    frac = np.bincount(a, minlength=3) / len(a)
    assert 0.08 < frac[0] <= 0.10 and 0.25 < frac[1] < 0.32
    # per KD leaf: exactly max(1, floor(0.1 n)) anchors, leaves never exceed the block size
    order, starts = kd_leaves(q, 256)
    lens = np.diff(starts)
    assert lens.max() <= 256 and np.array_equal(np.sort(order), np.arange(len(q)))
    sel = fps_select(q, order, starts, 0.1)
    leaf_of = np.empty(len(q), dtype=np.int64)
    leaf_of[order] = np.repeat(np.arange(len(lens)), lens)
    assert np.array_equal(np.bincount(leaf_of[sel], minlength=len(lens)), np.maximum(1, np.floor(0.1 * lens)))
    # FPS spreads the picks: anchors are farther apart than random picks
    from scipy.spatial import cKDTree
    dmin = cKDTree(q[a == 0]).query(q[a == 0], k=2)[0][:, 1].mean()
    rnd = np.random.default_rng(0).choice(len(q), (a == 0).sum(), replace=False)
    assert dmin > cKDTree(q[rnd]).query(q[rnd], k=2)[0][:, 1].mean()


def test_kd_leaves_terminate_on_duplicate_coordinates():
    q = np.zeros((1000, 3), dtype=np.int64)
    order, starts = kd_leaves(q, 64)
    assert np.diff(starts).max() <= 64 and len(order) == 1000


def test_nearest_reference_is_the_nearest_grid_point():
    rng = np.random.default_rng(4)
    ref, query = rng.integers(0, 100, (300, 3)), rng.integers(0, 100, (200, 3))
    idx = nearest_reference(ref, query, workers=1)
    d = ((query[:, None, :] - ref[None]) ** 2).sum(-1)
    assert np.array_equal(d[np.arange(len(query)), idx], d.min(1))
    assert nearest_reference(ref, query[:0]).shape == (0,)
