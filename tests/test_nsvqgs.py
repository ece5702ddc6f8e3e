"""NSVQ-GS: noise substitution, codebook learning, the strategy's phases, the codec's
bit-exact round trip and its corruption handling, and one short training run (CPU)."""

import math

import numpy as np
import pytest
import torch

from gs.codecs.base import BitstreamError, CodecContext, bitstream_size
from gs.methods.nsvqgs import (
    ARTIFACT,
    ARTIFACT_KEY,
    BITSTREAM_FILE,
    NSVQCodec,
    NSVQStrategy,
    attr_matrix,
    kmeans,
    nearest_code,
    noise_substitute,
    take_rows,
)
from gs.model import GaussianModel
from gs.render import render
from gs.render.base import Camera
from gs.train import ops
from gs.train.strategy import TrainContext

SMALL_K = dict(k_scale=16, k_rotation=16, k_dc=8, k_sh=8)


def random_model(n=300, degree=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    return GaussianModel(dict(
        means=torch.rand(n, 3, generator=g) * 2 - 1, scales=torch.randn(n, 3, generator=g) * 0.3 - 3,
        quats=torch.randn(n, 4, generator=g), opacities=torch.randn(n, generator=g),
        sh0=torch.randn(n, 1, 3, generator=g), shN=torch.randn(n, k - 1, 3, generator=g) * 0.1), degree)


def camera():
    vm = torch.eye(4)
    vm[2, 3] = 4.0  # looking down +z at the unit cube from z = -4
    return Camera(vm, fx=60.0, fy=60.0, cx=32.0, cy=24.0, width=64, height=48)


def make_ctx(model, iterations=300, step=0):
    lrs = {"means": 1e-4, "scales": 5e-3, "quats": 1e-3, "opacities": 0.025, "sh0": 2.5e-3, "shN": 1.25e-4}
    opt = ops.make_optimizer(model, lrs)
    return TrainContext(model=model, optimizer=opt, scene=None, scene_extent=1.0, iterations=iterations,
                        backend="torch", device=torch.device("cpu"), background=torch.zeros(3), step=step,
                        active_sh_degree=model.sh_degree)


# ---------------------------------------------------------------------------- VQ primitives
def test_noise_substitution_has_exactly_the_quantization_error_norm():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 45, generator=g, dtype=torch.float64)
    c = torch.randn(500, 45, generator=g, dtype=torch.float64)
    xt = noise_substitute(x, c, generator=g)
    assert torch.allclose((xt - x).norm(dim=1), (x - c).norm(dim=1), rtol=1e-12, atol=0)
    # the direction is random, not the quantization error itself
    cos = torch.nn.functional.cosine_similarity(xt - x, c - x, dim=1)
    assert cos.abs().mean() < 0.5
    # a row already on its code is not perturbed
    assert torch.equal(noise_substitute(x[:3], x[:3].clone()), x[:3])


def test_codebook_and_attributes_receive_gradients():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 4, generator=g).requires_grad_()
    cb = torch.nn.Parameter(torch.randn(32, 4, generator=g))
    k = nearest_code(x, cb)
    noise_substitute(x, cb[k], generator=g).pow(2).sum().backward()
    used = torch.zeros(32, dtype=torch.bool)
    used[k] = True
    assert cb.grad is not None and (cb.grad[used].abs().sum(1) > 0).all()
    assert (cb.grad[~used] == 0).all()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_take_rows_matches_indexing_in_values_and_codebook_gradient():
    # the training path reads codes with take_rows (index_select) for speed; it must give
    # cb[k]'s values and cb[k]'s gradient, repeats summed
    g = torch.Generator().manual_seed(2)
    cb = torch.randn(8, 5, generator=g, dtype=torch.float64).requires_grad_()
    k = torch.randint(8, (300,), generator=g)
    k[:40] = 3  # many repeats of one code
    w = torch.randn(300, 5, generator=g, dtype=torch.float64)
    (take_rows(cb, k) * w).sum().backward()
    grad_take = cb.grad.clone()
    cb.grad = None
    (cb[k] * w).sum().backward()
    assert torch.equal(take_rows(cb, k), cb[k])
    torch.testing.assert_close(grad_take, cb.grad)
    assert grad_take[3].abs().sum() > 0


def test_nearest_code_matches_cdist_and_kmeans_converges():
    g = torch.Generator().manual_seed(2)
    x = torch.cat([torch.randn(100, 3, generator=g) * 0.05 + c for c in torch.eye(3) * 5])
    cb = torch.randn(17, 3, generator=g)
    assert torch.equal(nearest_code(x, cb, max_elements=40), torch.cdist(x, cb).argmin(1))
    c = kmeans(x, 3, iters=10, generator=g)
    err = (x - c[nearest_code(x, c)]).norm(dim=1).max()
    assert err < 0.5
    # fewer vectors than codes: every vector is (nearly) its own code, no crash
    small = kmeans(x[:5], 16, generator=g)
    assert small.shape == (16, 3)
    assert (x[:5] - small[nearest_code(x[:5], small)]).norm(dim=1).max() < 1e-3


# ---------------------------------------------------------------------------- strategy
def test_fresh_start_clamps_initial_scales_as_upstream():
    """At step 0 the log-scales are clamped to log(2) (squared NN distance <= 4, upstream);
    a start from a checkpoint (step > 0) leaves them as they are."""
    model = random_model()
    with torch.no_grad():
        model.params["scales"][:5] = 3.0
    ctx = make_ctx(model, iterations=300)
    ctx.step = 0
    NSVQStrategy(**SMALL_K).initialize(ctx)
    assert float(model.params["scales"].detach().max()) == pytest.approx(math.log(2.0))
    with torch.no_grad():
        model.params["scales"][:5] = 3.0
    ctx.step = 10
    NSVQStrategy(**SMALL_K).initialize(ctx)
    assert float(model.params["scales"].detach().max()) == 3.0


def test_strategy_vq_phase_gradients_dead_codes_and_finalize():
    model = random_model()
    ctx = make_ctx(model, iterations=300)
    strat = NSVQStrategy(**SMALL_K)
    assert strat.num_iterations(ctx) == 450  # the 45k recipe at the 30k scale
    ctx.step = ctx.at(20_000)  # started at the VQ start (e.g. from a checkpoint): codebooks built now
    strat.initialize(ctx)
    names = {g["name"] for g in ctx.optimizer.param_groups}
    assert [g["lr"] for g in ctx.optimizer.param_groups if g["name"] == "opacities"] == [0.05]  # upstream's
    assert {"codebook.scales", "codebook.quats", "codebook.sh0", "codebook.shN"} <= names
    assert strat.codebooks["shN"].shape == (8, 45)

    ctx.step += 1
    assert strat.phase(ctx, ctx.step) == "nsvq"
    raw = {k: attr_matrix(model.params, k).detach().clone() for k in strat.codebooks}
    p = strat.render_params(ctx)
    assert set(p) == {"scales", "quats", "sh"}
    # rendered log-scales = noise-substituted values: exactly the quantization error away
    err = (raw["scales"] - strat.codebooks["scales"].detach()[nearest_code(raw["scales"], strat.codebooks["scales"])]).norm(dim=1)
    assert torch.allclose((torch.log(p["scales"]) - raw["scales"]).norm(dim=1), err, rtol=1e-4, atol=1e-5)
    (p["scales"].sum() + p["quats"].sum() + p["sh"].pow(2).sum()).backward()
    for key, cb in strat.codebooks.items():
        assert cb.grad is not None and cb.grad.abs().sum() > 0, key
        assert model.params[key].grad.abs().sum() > 0, key
    assert all(int((u > 0).sum()) > 0 for u in strat.used.values())
    ctx.optimizer.step()
    ctx.optimizer.zero_grad(set_to_none=True)

    # dead codes: mark every code but one unused -> all overwritten by copies of it; upstream's
    # default: exact copies (1e-12 noise), Adam moments kept
    cb_param = strat.codebooks["scales"]
    moments = {m: ctx.optimizer.state[cb_param][m].clone() for m in ("exp_avg", "exp_avg_sq")}
    before = cb_param.detach().clone()
    with torch.no_grad():
        strat.used["scales"].zero_()
        strat.used["scales"][3] = 100.0
    strat.replace_dead_codes(ctx, ctx.step + 10)
    cb = strat.codebooks["scales"].detach()
    assert torch.allclose(cb, cb[3].expand_as(cb), rtol=0, atol=1e-9)
    for m, v in moments.items():
        assert torch.equal(ctx.optimizer.state[cb_param][m], v), m
    # fresh_dead_codes: perturbed copies, moments of the replaced codes zeroed
    strat.fresh_dead_codes = True
    with torch.no_grad():
        cb_param.copy_(before)  # a codebook with spread (the noise is relative to its std)
        strat.used["scales"].zero_()
        strat.used["scales"][0] = 100.0
    strat.replace_dead_codes(ctx, ctx.step + 20)
    cb = strat.codebooks["scales"].detach()
    assert torch.allclose(cb, cb[0].expand_as(cb), atol=1e-2)
    assert len(torch.unique(cb, dim=0)) > 1  # perturbed copies, not exact duplicates
    assert (ctx.optimizer.state[cb_param]["exp_avg"][1:] == 0).all()
    assert (ctx.optimizer.state[cb_param]["exp_avg"][0] == moments["exp_avg"][0]).all()
    assert all(float(u.sum()) == 0 for u in strat.used.values())

    # frozen assignment + finalize: the model becomes C[idx], the artifacts hold both
    strat.freeze_assignment(ctx)
    ctx.step = ctx.at(43_000) + 1
    p = strat.render_params(ctx)
    p["sh"].sum().backward()
    assert strat.codebooks["sh0"].grad is not None
    assert model.params["sh0"].grad is None  # raw VQ'd attributes get no gradient in the fine-tune
    with torch.no_grad():
        strat.finalize(ctx)
    art = ctx.log["artifacts"][ARTIFACT]
    for key in strat.codebooks:
        q = torch.from_numpy(art[f"codebook.{key}"])[torch.from_numpy(art[f"index.{key}"])]
        assert torch.equal(attr_matrix(model.params, key).detach(), q), key


def test_nsvq_phase_quantizes_and_renders_only_the_visible_subset():
    model = random_model(n=200)
    with torch.no_grad():
        model.params["means"][:80, 2] = -10.0  # behind the camera: culled
    ctx = make_ctx(model)
    ctx.camera = camera()
    strat = NSVQStrategy(**SMALL_K)
    ctx.step = ctx.at(20_000)
    strat.initialize(ctx)
    ctx.step += 1
    p = strat.render_params(ctx)
    n_vis = int(strat._visible(ctx).sum())
    assert 0 < n_vis <= 120
    assert {"means", "opacities", "scales", "quats", "sh"} <= set(p)
    assert all(t.shape[0] == n_vis for t in p.values())
    assert all(int(u.sum()) > 0 for u in strat.used.values())
    from gs.render import get_backend

    img = get_backend("torch")(p["means"], p["quats"], p["scales"], p["opacities"], p["sh"], ctx.camera,
                               sh_degree=model.sh_degree, background=torch.zeros(3)).image
    img.sum().backward()
    assert model.params["means"].grad[:80].abs().sum() == 0  # culled rows take no part
    assert model.params["means"].grad[80:].abs().sum() > 0


def test_strategy_state_dict_round_trip_restores_codebooks_and_adam():
    model = random_model(n=120)
    ctx = make_ctx(model)
    strat = NSVQStrategy(**SMALL_K)
    ctx.step = ctx.at(20_000)
    strat.initialize(ctx)
    ctx.step += 1
    p = strat.render_params(ctx)
    (p["scales"].sum() + p["quats"].sum() + p["sh"].sum()).backward()
    ctx.optimizer.step()
    sd = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in strat.state_dict().items()}
    assert "nsvq.adam.sh0.exp_avg" in sd

    ctx2 = make_ctx(model.detached_copy(), step=ctx.step)  # a resumed run: fresh optimizer
    strat2 = NSVQStrategy(**SMALL_K)
    strat2.load_state_dict(sd)
    strat2.initialize(ctx2)
    for key, cb in strat.codebooks.items():
        assert torch.equal(strat2.codebooks[key].detach(), cb.detach())
        g = ops.group_of(ctx2.optimizer, f"codebook.{key}")
        assert g["params"][0] is strat2.codebooks[key]
        assert torch.equal(ctx2.optimizer.state[g["params"][0]]["exp_avg"], ctx.optimizer.state[cb]["exp_avg"])


def test_reg_phase_adds_opacity_sum_and_prunes():
    model = random_model(n=200)
    ctx = make_ctx(model, iterations=300)
    strat = NSVQStrategy(**SMALL_K)
    strat.initialize(ctx)
    step = ctx.at(16_000)
    reg = strat.loss(ctx, step, None, None)
    assert torch.allclose(reg, 1e-7 * model.opacities.sum())
    assert strat.loss(ctx, ctx.at(15_000), None, None) is None
    low = int((model.opacities < 0.005).sum())
    with torch.no_grad():
        model.params["opacities"][:10] = -10.0  # alpha ~ 4.5e-5
    n0 = model.num_gaussians
    with torch.no_grad():
        strat.after_step(ctx, step, None)
    assert model.num_gaussians == n0 - 10 - low


# ---------------------------------------------------------------------------- codec
def quantized_model_and_aux(n=300, degree=3, seed=0):
    """A hard-quantized model C[idx] and the artifacts a training run would save."""
    m = random_model(n, degree, seed)
    g = torch.Generator().manual_seed(seed)
    aux = {}
    for key, k in zip(("scales", "quats", "sh0", "shN"), (16, 16, 8, 8)):
        x = attr_matrix(m.params, key).detach()
        if x.shape[1] == 0:
            continue
        cb = kmeans(x, k, generator=g)
        idx = nearest_code(x, cb)
        with torch.no_grad():
            m.params[key].copy_(cb[idx].reshape(m.params[key].shape))
        aux[f"codebook.{key}"] = cb.numpy()
        aux[f"index.{key}"] = idx.numpy()
    return m, {ARTIFACT_KEY: aux}


@pytest.mark.parametrize("entropy", [True, False])
def test_codec_round_trip_is_bit_exact_and_renders_identically(tmp_path, entropy):
    m, aux = quantized_model_and_aux()
    codec = NSVQCodec(**SMALL_K, entropy_coding=entropy)
    stats = codec.encode(m, tmp_path / "bs", CodecContext(aux=aux))
    assert stats["quantization_source"] == "trained"
    assert stats["size_bytes"] == bitstream_size(tmp_path / "bs")
    assert stats["size_bytes_fixed_width"] == sum(stats["components_fixed_width"].values())
    # the paper's layout is upstream's zip: its payload plus file headers, deflated
    assert 0.5 * stats["size_bytes_fixed_width"] < stats["size_bytes_paper_format"] < 2 * stats["size_bytes_fixed_width"]
    assert sum(stats["components"].values()) == stats["size_bytes"]
    d = NSVQCodec().decode(tmp_path / "bs")
    assert d.sh_degree == m.sh_degree
    for k in m.params:
        assert torch.equal(d.params[k].detach(), m.params[k].detach()), k
    cam = camera()
    with torch.no_grad():
        a = render(m, cam, backend="torch").image
        b = render(d, cam, backend="torch").image
    assert a.abs().sum() > 0 and torch.equal(a, b)


def test_codec_without_artifacts_quantizes_post_hoc(tmp_path):
    for degree in (0, 3):
        m = random_model(n=150, degree=degree)
        stats = NSVQCodec(**SMALL_K).encode(m, tmp_path / f"bs{degree}", CodecContext())
        assert stats["quantization_source"] == "post-hoc k-means"
        d = NSVQCodec().decode(tmp_path / f"bs{degree}")
        assert torch.equal(d.params["means"], m.params["means"].detach())
        assert torch.equal(d.params["opacities"], m.params["opacities"].detach())
        assert len(torch.unique(d.params["scales"], dim=0)) <= 16
        assert d.params["shN"].shape == m.params["shN"].shape


def test_codec_corrupt_or_truncated_bitstream_raises_naming_the_file(tmp_path):
    m, aux = quantized_model_and_aux(n=100)
    NSVQCodec(**SMALL_K).encode(m, tmp_path / "bs", CodecContext(aux=aux))
    path = tmp_path / "bs" / BITSTREAM_FILE
    good = path.read_bytes()
    rng = np.random.default_rng(0)
    cases = [good[:cut] for cut in rng.integers(0, len(good), 25)] + [good[:-1], b""]
    for pos in rng.integers(0, len(good), 60):
        bad = bytearray(good)
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        cases.append(bytes(bad))
    for data in cases:
        path.write_bytes(data)
        with pytest.raises(BitstreamError, match=BITSTREAM_FILE.replace(".", r"\.")):
            NSVQCodec().decode(tmp_path / "bs")
    path.unlink()
    with pytest.raises(BitstreamError, match="missing"):
        NSVQCodec().decode(tmp_path / "bs")


# ---------------------------------------------------------------------------- training
@pytest.mark.slow
def test_short_training_from_baseline_checkpoint(tmp_path):
    from gs.codecs.run import run_codec
    from gs.data import generate_scene, load_scene
    from gs.methods.registry import train_method
    from gs.train.trainer import TrainConfig

    scene = load_scene(generate_scene(tmp_path / "scene", seed=0, num_views=8, width=40, height=30,
                                      num_points=800))
    common = dict(iterations=60, backend="torch", device="cpu", progress=False, seed=0)
    # no clone/split: at this scale the recipe would refine every step and grow the model
    # exponentially (slow on CPU); the NSVQ phases start after densification anyway
    no_growth = {"grad_threshold": 1e9}
    # the shared prefix: the baseline's checkpoint at "15k" (= step 30 of a 60-step recipe)
    train_method(scene, "3dgs", no_growth, tmp_path / "base",
                 TrainConfig(**common, checkpoint_every=30, keep_checkpoints=3))
    ckpt = tmp_path / "base" / "checkpoints" / "ckpt_30.pt"
    params = dict(SMALL_K, **no_growth)
    res = train_method(scene, "nsvqgs", params, tmp_path / "nsvq", TrainConfig(**common, init_checkpoint=str(ckpt)))
    assert res.stats["iterations"] == 90 and res.stats["resumed_from"].endswith("ckpt_30.pt")
    ply = tmp_path / "nsvq" / "point_cloud.ply"
    model = GaussianModel.load_ply(ply)
    assert model.num_gaussians == res.model.num_gaussians > 0
    assert (tmp_path / "nsvq" / ARTIFACT).is_file()
    stats = run_codec("nsvqgs", params, ply, tmp_path / "codec", device="cpu")
    assert stats["quantization_source"] == "trained"
    assert stats["size_bytes"] * 5 < ply.stat().st_size
    decoded = GaussianModel.load_ply(tmp_path / "codec" / "point_cloud.ply")
    for k in model.params:
        assert torch.equal(decoded.params[k], model.params[k]), k
    # the trained model uses its codebooks: at most K distinct rows per attribute
    assert len(torch.unique(model.params["scales"], dim=0)) <= SMALL_K["k_scale"]


def test_nearest_kernel_choice(monkeypatch):
    from gs.train.nearest import kernel_name

    monkeypatch.delenv("GS_NEAREST_KERNEL", raising=False)
    assert kernel_name(3) == "fma" and kernel_name(4) == "fma" and kernel_name(45) == "torch"
    monkeypatch.setenv("GS_NEAREST_KERNEL", "dot")
    assert kernel_name(3) == "dot"
    assert kernel_name(45, "fma") == "fma"
    monkeypatch.setenv("GS_NEAREST_KERNEL", "fast")
    with pytest.raises(ValueError, match="GS_NEAREST_KERNEL"):
        kernel_name(3)


def test_paper_format_size_reaches_results_csv_and_tables(tmp_path):
    """metrics.json's extra.size_bytes_paper_format -> results rows (bytes and MB) and the
    table's "Size, paper layout" column; a codec without one (null) shows a dash."""
    from gs.report.tables import collect_results, markdown_table

    paths = []
    for method, paper in (("nsvqgs", 9_720_000), ("hgsc", None)):
        data = {"schema_version": 1, "dataset": "llff", "scene": "fern", "method": method, "variant": "default",
                "seed": 0, "metrics": {"psnr": 25.0, "ssim": 0.8, "lpips": 0.2}, "size_bytes": 8_380_000,
                "size_mb": 8.38, "num_gaussians": 1000, "timings": {},
                "extra": {"size_bytes_paper_format": paper}}
        path = tmp_path / method / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(__import__("json").dumps(data))
        paths.append(path)
    df = collect_results(paths)
    row = df[df["method"] == "nsvqgs"].iloc[0]
    assert row["size_bytes_paper_format"] == 9_720_000 and row["size_mb_paper"] == pytest.approx(9.72)
    assert df[df["method"] == "hgsc"]["size_mb_paper"].isna().all()
    md = markdown_table(df, "llff")
    assert "Size, paper layout [MB]" in md and "9.72" in md


def test_paper_layout_is_the_zip_upstream_writes_and_decodes_as_theirs_does(tmp_path):
    """upstream_zip's four files, read back the way upstream's load_ply reads them (indices MSB
    first per attribute in --quant_params order, codebook lookup), give our model's attributes."""
    import io
    import zipfile

    from plyfile import PlyData

    from gs.methods.nsvqgs import upstream_zip

    m, aux = quantized_model_and_aux(n=123)
    books = {k: torch.from_numpy(aux[ARTIFACT_KEY][f"codebook.{k}"]) for k in ("scales", "quats", "sh0", "shN")}
    idx = {k: torch.from_numpy(aux[ARTIFACT_KEY][f"index.{k}"]) for k in books}
    data = upstream_zip(m.params["means"], m.params["opacities"], books, idx)
    z = zipfile.ZipFile(io.BytesIO(data))
    assert sorted(z.namelist()) == ["codebook.pth", "point_cloud.ply", "vq_args.npy", "vq_inds.bin"]
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    args = np.load(io.BytesIO(z.read("vq_args.npy")), allow_pickle=True).item()
    assert args["quant_params"] == ["sh", "dc", "rot", "scale"] and args["n_bits"]["sh"] == 3  # K = 8
    codebook = torch.load(io.BytesIO(z.read("codebook.pth")))
    bits = np.unpackbits(np.frombuffer(z.read("vq_inds.bin"), np.uint8))
    assert len(bits) == math.ceil(sum(args["len"].values()) / 8) * 8
    start = 0
    for ours, theirs in (("shN", "sh"), ("sh0", "dc"), ("quats", "rot"), ("scales", "scale")):
        width = args["n_bits"][theirs]
        chunk = bits[start:start + args["len"][theirs]].reshape(-1, width)
        start += args["len"][theirs]
        ind = chunk.astype(np.int64) @ (1 << np.arange(width - 1, -1, -1))
        got = codebook[theirs][torch.from_numpy(ind)]
        assert torch.equal(got.reshape(m.params[ours].shape), m.params[ours].detach()), theirs
    vertex = PlyData.read(io.BytesIO(z.read("point_cloud.ply")))["vertex"]
    assert [p.name for p in vertex.properties] == ["x", "y", "z", "opacity"] and vertex.count == 123
    assert np.array_equal(vertex["opacity"], m.params["opacities"].detach().numpy().reshape(-1))
    stats = NSVQCodec(**SMALL_K).encode(m, tmp_path / "bs", CodecContext(aux=aux))
    assert stats["size_bytes_paper_format"] == len(data)
