"""HGSC: deterministic partition, exact integer RAHT, lossless geometry, bit-exact round trip,
corruption handling, significance pruning and an end-to-end run_codec on a generated scene."""

import json
import warnings

import numpy as np
import pytest
import torch

from gs.codecs.base import BitstreamError, CodecContext, bitstream_size
from gs.codecs.run import run_codec
from gs.data import generate_scene, load_scene
from gs.methods.hgsc import (
    FILES,
    HGSCCodec,
    HGSCParams,
    attribute_matrix,
    decode_octree,
    encode_octree,
    fps_select,
    kd_leaves,
    model_from_attributes,
    morton_decode,
    morton_encode,
    partition,
    prune_least_significant,
    raht_forward,
    raht_inverse,
    raht_structure,
    render_fidelity,
    significance_scores,
)
from gs.model import GaussianModel


def random_model(n=2000, degree=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    # clustered positions (surface-like) so the partition has structure
    centres = torch.rand(8, 3, generator=g) * 2 - 1
    means = centres[torch.randint(0, 8, (n,), generator=g)] + torch.randn(n, 3, generator=g) * 0.1
    return GaussianModel(dict(
        means=means, scales=torch.randn(n, 3, generator=g) * 0.3 - 3,
        quats=torch.randn(n, 4, generator=g), opacities=torch.randn(n, generator=g),
        sh0=torch.randn(n, 1, 3, generator=g), shN=torch.randn(n, k - 1, 3, generator=g) * 0.1), degree)


def grid_points(n, bits=15, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 2 ** bits, size=(n, 3))
    codes = np.unique(morton_encode(q, bits))
    return codes, morton_decode(codes, bits)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    root = generate_scene(tmp_path_factory.mktemp("hgsc") / "demo", seed=3, num_views=9, width=32, height=24,
                          num_points=400)
    return load_scene(root)


def scene_model(scene, extra_hidden=0):
    m = GaussianModel.from_points(scene.points, scene.colors, sh_degree=1, init_opacity=0.5)
    if extra_hidden:
        # fully transparent Gaussians (alpha << 1/255): zero blend weight in every view
        h = m.select(torch.arange(extra_hidden))
        h.params["opacities"].data.fill_(-30.0)
        h.params["means"].data += 0.01
        m = GaussianModel({k: torch.cat([m.params[k].detach(), h.params[k].detach()]) for k in m.params}, 1)
    return m


# ---------------------------------------------------------------------------- building blocks
def test_morton_roundtrip_and_order():
    rng = np.random.default_rng(0)
    q = rng.integers(0, 2 ** 15, size=(1000, 3))
    assert np.array_equal(morton_decode(morton_encode(q, 15), 15), q)
    # a node's children share its prefix: codes >> 3 = the parent's code on the coarser grid
    assert np.array_equal(morton_encode(q, 15) >> 3, morton_encode(q >> 1, 14))


def test_raht_is_exact_on_integers_and_decorrelates():
    codes, q = grid_points(3000, bits=8, seed=1)
    tree = raht_structure(codes)
    rng = np.random.default_rng(1)
    vals = rng.integers(0, 32769, size=(len(codes), 5))
    highs, dc = raht_forward(vals, tree)
    assert highs.shape == (len(codes) - 1, 5) and dc.shape == (1, 5)
    assert np.array_equal(raht_inverse(highs, dc, tree), vals)
    # a constant signal has only a DC coefficient; a smooth one has small highs
    const = np.full((len(codes), 1), 1234)
    h, d = raht_forward(const, tree)
    assert not h.any() and d[0, 0] == 1234
    smooth = (q.sum(1, keepdims=True) * 20).astype(np.int64)
    h, _ = raht_forward(smooth, tree)
    assert np.abs(h).mean() < 0.2 * np.abs(smooth - smooth.mean()).mean()
    assert np.array_equal(raht_inverse(h, raht_forward(smooth, tree)[1], tree), smooth)


def test_raht_inverse_edge_cases_and_large_weights():
    # one point (no levels), two points, and signed values with large weights (the in-place
    # inverse divides in float64: exact while |w2 * h| < 2^53)
    for codes in (np.array([5]), np.array([2, 3]), np.arange(0, 200_000, 3)):
        tree = raht_structure(codes)
        vals = np.random.default_rng(len(codes)).integers(-(2 ** 20), 2 ** 20, size=(len(codes), 2))
        highs, dc = raht_forward(vals, tree)
        assert np.array_equal(raht_inverse(highs, dc, tree), vals)


def test_octree_geometry_is_lossless():
    codes, _ = grid_points(5000, seed=2)
    data = encode_octree(codes, 15)
    assert np.array_equal(decode_octree(data, 15, len(codes)), codes)
    # dense, structured input codes much better than 45 bits per point
    x, y = np.meshgrid(np.arange(64), np.arange(64))
    plane = np.stack([x.ravel(), y.ravel(), (x.ravel() // 3)], 1) + 1000
    pcodes = np.unique(morton_encode(plane, 15))
    pdata = encode_octree(pcodes, 15)
    assert np.array_equal(decode_octree(pdata, 15, len(pcodes)), pcodes)
    assert 8 * len(pdata) / len(pcodes) < 4.0
    with pytest.raises(BitstreamError, match="geometry"):
        decode_octree(data, 15, len(codes) + 1)


def test_partition_is_deterministic_and_has_the_paper_fractions():
    _, q = grid_points(6000, seed=3)
    p = HGSCParams(block_size=256, lod_block_size=128)
    a = partition(q, p)
    b = partition(q.copy(), p)
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


def test_colour_transform_round_trip():
    m = random_model(50, degree=2)
    back = model_from_attributes(m.means.detach().numpy(), attribute_matrix(m), 2)
    for k in ("sh0", "shN", "scales", "quats", "opacities"):
        assert torch.allclose(back.params[k], m.params[k], atol=1e-5), k


# ---------------------------------------------------------------------------- codec
def roundtrip(model, tmp_path, **params):
    codec = HGSCCodec(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = codec.encode(model, tmp_path)
    decoded = HGSCCodec(**params).decode(tmp_path)
    return codec, stats, decoded


@pytest.mark.parametrize("degree", [0, 3])
def test_decode_equals_the_encoders_reconstruction_bit_exactly(tmp_path, degree):
    model = random_model(3000, degree=degree)
    codec, stats, dec = roundtrip(model, tmp_path, prune_percent=0)
    rec = codec.reconstruction
    assert dec.sh_degree == degree and dec.num_gaussians == rec.num_gaussians == stats["num_gaussians"]
    for k in rec.params:
        assert torch.equal(dec.params[k], rec.params[k]), k
    assert stats["size_bytes"] == bitstream_size(tmp_path) == sum(stats["components"].values())
    assert set(stats["components"]) == set(FILES)
    assert stats["partition"]["anchors"] + stats["partition"]["lod1"] + stats["partition"]["lod2"] == dec.num_gaussians

    # fidelity to the input: positions within half a voxel, anchors near-lossless
    from scipy.spatial import cKDTree
    src = model.means.detach().numpy()
    dist, idx = cKDTree(src).query(dec.means.detach().numpy())
    voxel = (src.max(0) - src.min(0)) / (2 ** 15 - 1)
    assert dist.max() <= 0.5 * np.linalg.norm(voxel) + 1e-6
    n_anchor = stats["partition"]["anchors"]
    a_src, a_dec = attribute_matrix(model)[idx], attribute_matrix(dec)
    span = a_src.max(0) - a_src.min(0)
    assert np.all(np.abs(a_dec[:n_anchor] - a_src[:n_anchor]) <= span / 32768 + 1e-5)
    # LoD points: within their (coarse) quantization, but not copies of the input
    err = np.abs(a_dec[n_anchor:] - a_src[n_anchor:]).mean(0)
    assert np.all(err <= 0.25 * span + 1e-6)


def test_lod_columns_decode_in_worker_processes_and_format_1_still_reads(tmp_path, monkeypatch):
    """Format 2 codes every LoD residual column as its own stream; decoding them in worker
    processes gives the same model, and a format-1 LoD file (one stream for all columns)
    still decodes to it."""
    from gs.codecs.container import read_container, write_container
    from gs.column_streams import decode_columns, split_streams
    from gs.methods.hgsc import HGSCParams, _sym_code, lod_groups, lod_levels

    model = random_model(2500, degree=2)
    codec, stats, _ = roundtrip(model, tmp_path, prune_percent=0)
    rec = codec.reconstruction
    monkeypatch.setenv("GS_DECODE_WORKERS", "2")
    dec = HGSCCodec().decode(tmp_path)
    for k in rec.params:
        assert torch.equal(dec.params[k], rec.params[k]), k
    monkeypatch.delenv("GS_DECODE_WORKERS")

    alphabets = lod_levels(lod_groups(2, HGSCParams.from_dict({"prune_percent": 0}))) + 1
    for lod in ("lod1", "lod2"):  # rewrite each LoD file as format 1
        arrays, meta = read_container(tmp_path / FILES[lod])
        streams = split_streams(arrays.pop("symbols"), arrays.pop("symbol_sizes"))
        (q,) = decode_columns([(streams, stats["partition"][lod], alphabets)], workers=1)
        arrays["symbols"] = _sym_code(q.astype(np.int64), alphabets)
        write_container(tmp_path / FILES[lod], arrays, dict(meta, version=1))
    old = HGSCCodec().decode(tmp_path)
    for k in rec.params:
        assert torch.equal(old.params[k], rec.params[k]), k


def test_smaller_bit_depths_give_smaller_files(tmp_path):
    model = random_model(2000, degree=3)
    _, hi, _ = roundtrip(model, tmp_path / "hi", prune_percent=0, lod_bits=8, lod_bits_uv=4)
    _, lo, _ = roundtrip(model, tmp_path / "lo", prune_percent=0, lod_bits=5, lod_bits_uv=3)
    assert lo["components"]["lod2"] < hi["components"]["lod2"]
    assert lo["components"]["geometry"] == hi["components"]["geometry"]


def test_draco_geometry_coder_round_trip(tmp_path):
    pytest.importorskip("DracoPy")
    model = random_model(1500, degree=1)
    codec, _, dec = roundtrip(model, tmp_path, prune_percent=0, geometry_coder="draco")
    for k in dec.params:
        assert torch.equal(dec.params[k], codec.reconstruction.params[k]), k


@pytest.mark.parametrize("key", sorted(FILES))
def test_corrupt_truncated_or_missing_files_raise_naming_the_file(tmp_path, key):
    model = random_model(800, degree=1)
    roundtrip(model, tmp_path, prune_percent=0)
    path = tmp_path / FILES[key]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(BitstreamError, match=FILES[key]):
        HGSCCodec().decode(tmp_path)
    path.write_bytes(bytes(data[: len(data) - 7]))
    with pytest.raises(BitstreamError, match=FILES[key]):
        HGSCCodec().decode(tmp_path)
    path.unlink()
    with pytest.raises(BitstreamError, match=FILES[key]):
        HGSCCodec().decode(tmp_path)


def test_bad_parameters_are_rejected():
    with pytest.raises(TypeError, match="unknown HGSC parameters"):
        HGSCCodec(prune_pct=3)
    with pytest.raises(ValueError, match="prune_percent"):
        HGSCCodec(prune_percent=100)
    with pytest.raises(ValueError, match="geometry_coder"):
        HGSCCodec(geometry_coder="gpcc")


def test_no_scene_skips_pruning_with_a_note(tmp_path):
    model = random_model(500, degree=1)
    with pytest.warns(UserWarning, match="pruning skipped"):
        stats = HGSCCodec().encode(model, tmp_path, CodecContext())
    assert stats["significance_pruning"].startswith("skipped")
    assert stats["num_gaussians"] == 500 - stats["merged_duplicates"]


# ---------------------------------------------------------------------------- significance
def test_prune_least_significant_removes_exactly_the_lowest_fraction():
    scores = np.array([5.0, 0.0, 3.0, 0.0, 9.0, 1.0, 0.0, 7.0, 2.0, 4.0])
    keep = prune_least_significant(scores, 40)
    assert np.array_equal(keep, [0, 2, 4, 7, 8, 9])
    assert len(prune_least_significant(scores, 0)) == 10


def test_significance_pruning_removes_the_invisible_gaussians(scene, tmp_path):
    model = scene_model(scene, extra_hidden=100)
    n = model.num_gaussians
    scores = significance_scores(model, scene.train_cameras, backend="torch")
    assert np.all(scores[-100:] == 0) and (scores[:-100] > 0).mean() > 0.5
    pct = 100.0 * 100 / n
    stats = HGSCCodec(prune_percent=pct).encode(model, tmp_path, CodecContext(scene=scene, backend="torch"))
    assert stats["significance_pruning"].startswith(f"removed 100 of {n}")
    dec = HGSCCodec(prune_percent=pct).decode(tmp_path)
    # the transparent copies (opacity logit -30) are gone, the visible ones stay
    assert dec.params["opacities"].min() > -29
    assert dec.num_gaussians == n - 100 - stats["merged_duplicates"]


def test_run_codec_end_to_end_and_render_fidelity(scene, tmp_path):
    model = scene_model(scene)
    ply = model.save_ply(tmp_path / "model" / "point_cloud.ply")
    stats = run_codec("hgsc", {"prune_percent": 30.0}, ply, tmp_path / "out", scene=scene, backend="torch",
                      device="cpu")
    saved = json.loads((tmp_path / "out" / "codec_stats.json").read_text())
    assert saved["size_bytes"] == stats["size_bytes"] == bitstream_size(tmp_path / "out" / "bitstream")
    assert stats["size_bytes"] * 4 < ply.stat().st_size
    assert stats["num_gaussians"] <= 0.7 * model.num_gaussians + 1
    dec = GaussianModel.load_ply(tmp_path / "out" / "point_cloud.ply")
    fid = render_fidelity(model, dec, scene, backend="torch")
    assert fid["num_views"] == len(scene.test_cameras) and fid["psnr"] is not None and fid["psnr"] > 10
    same = render_fidelity(model, model, scene, backend="torch")
    assert same["psnr"] is None and "identical" in same["psnr_note"]
