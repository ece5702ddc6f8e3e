"""ARGP (gs/methods/argp.py, methods/argp.md): quantile opacity pruning, real freezing,
recovery by the per-pixel squared-gradient score (gs.train.stats.recovery_score)."""

from __future__ import annotations

import math

import pytest
import torch

from gs.data import generate_scene, load_scene
from gs.methods.argp import ARGPStrategy, quantile
from gs.methods.registry import get_method
from gs.model import GaussianModel
from gs.render import render
from gs.render import torch_backend as tb
from gs.render.base import Camera
from gs.train import ops
from gs.train.stats import recovery_alpha_grad, recovery_score, recovery_score_view
from gs.train.strategy import TrainContext
from gs.train.trainer import TrainConfig, Trainer


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    root = generate_scene(tmp_path_factory.mktemp("argp") / "demo", seed=1, num_views=10, width=32, height=24,
                          num_points=300)
    return load_scene(root)


def make_ctx(scene, model: GaussianModel, iterations: int = 30_000) -> TrainContext:
    lrs = {"means": 1.6e-4 * scene.extent, "scales": 5e-3, "quats": 1e-3, "opacities": 0.025,
           "sh0": 2.5e-3, "shN": 2.5e-3 / 20}
    opt = ops.make_optimizer(model, lrs)
    return TrainContext(model=model, optimizer=opt, scene=scene, scene_extent=scene.extent,
                        iterations=iterations, backend="torch", device=model.device,
                        background=scene.background, active_sh_degree=model.sh_degree)


def random_opacity_model(scene, seed: int = 0) -> GaussianModel:
    m = GaussianModel.from_points(scene.points, scene.colors, sh_degree=1)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        m.params["opacities"].copy_(torch.logit(torch.rand(m.num_gaussians, generator=g) * 0.9 + 0.05))
    return m


def train_steps(ctx: TrainContext, strategy: ARGPStrategy, steps: range) -> None:
    """The Trainer's hook order, enough for these tests (L1 loss)."""
    for step in steps:
        ctx.step = step
        i = step % len(ctx.scene.train_cameras)
        cam, gt = ctx.scene.train_cameras[i], ctx.scene.train_images[i].float() / 255
        out = render(ctx.model, cam, backend="torch", sh_degree=ctx.active_sh_degree, background=ctx.background)
        (out.image - gt).abs().mean().backward()
        strategy.after_backward(ctx, step, out)
        ctx.optimizer.step()
        ctx.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            strategy.after_step(ctx, step, out)


# ---------------------------------------------------------------------------- recovery score
def composite_loss(alpha, colors, background, valid):
    """L = sum of the clamped composite of per-pixel lists (C,L,P), written directly."""
    one_minus = 1 - alpha
    trans = torch.cat([torch.ones_like(alpha[:, :1]), torch.cumprod(one_minus, 1)[:, :-1]], 1)
    img = (alpha * trans)[..., None].mul(colors[:, :, None, :]).sum(1)
    img = img + (trans[:, -1] * one_minus[:, -1])[..., None] * background
    return (img.clamp(0, 1) * valid[..., None]).sum(), trans


def test_closed_form_alpha_gradient_equals_autograd_and_finite_differences():
    g = torch.Generator().manual_seed(0)
    C, L, P = 3, 7, 11
    alpha = torch.rand(C, L, P, generator=g, dtype=torch.float64) * 0.99
    alpha[torch.rand(C, L, P, generator=g) < 0.3] = 0.0  # skipped entries
    colors = torch.rand(C, L, 3, generator=g, dtype=torch.float64) * 1.6  # some pixels saturate
    bg = torch.tensor([0.3, 0.9, 0.1], dtype=torch.float64)
    valid = torch.rand(C, P, generator=g) < 0.85
    leaf = alpha.clone().requires_grad_(True)
    loss, trans = composite_loss(leaf, colors, bg, valid)
    (auto,) = torch.autograd.grad(loss, leaf)
    closed = recovery_alpha_grad(alpha, trans.detach(), colors, bg, valid)
    torch.testing.assert_close(closed, auto, rtol=1e-10, atol=1e-12)
    # the case covers saturated pixels (clamp gradient 0) and pixels outside the image
    w = alpha * trans.detach()
    img = (w[..., None] * colors[:, :, None, :]).sum(1) + (trans[:, -1] * (1 - alpha[:, -1])).detach()[..., None] * bg
    assert (img > 1).any() and (img < 1).any() and not valid.all()
    # brute-force finite differences on a few entries (central, double precision)
    eps = 1e-7
    for c, l, p in [(0, 0, 0), (1, 3, 5), (2, 6, 10), (0, 4, 7)]:
        hi, lo = alpha.clone(), alpha.clone()
        hi[c, l, p] += eps
        lo[c, l, p] -= eps
        fd = (composite_loss(hi, colors, bg, valid)[0] - composite_loss(lo, colors, bg, valid)[0]) / (2 * eps)
        assert abs(fd.item() - closed[c, l, p].item()) < 1e-5


def _small_model(n: int = 40, seed: int = 3) -> tuple[GaussianModel, Camera]:
    g = torch.Generator().manual_seed(seed)
    dt = torch.float64
    means = torch.cat([(torch.rand(n, 2, generator=g, dtype=dt) - 0.5) * 1.6,
                       3 + torch.rand(n, 1, generator=g, dtype=dt)], 1)
    scales = torch.full((n, 3), 0.12, dtype=dt) * (0.4 + torch.rand(n, 3, generator=g, dtype=dt))
    quats = torch.randn(n, 4, generator=g, dtype=dt)
    opac = torch.rand(n, generator=g, dtype=dt) * 0.95 + 0.04
    opac[:6] = 0.999  # opaque ones: alpha hits the 0.99 clamp and pixels terminate
    sh0 = (torch.rand(n, 1, 3, generator=g, dtype=dt) - 0.5) / 0.282 * 1.4  # some colours > 1
    model = GaussianModel(dict(means=means, scales=scales.log(), quats=quats, opacities=torch.logit(opac),
                               sh0=sh0, shN=torch.zeros(n, 3, 3, dtype=dt)), sh_degree=1)
    W, H = 37, 29  # edge tiles with pixels outside the image
    cam = Camera(torch.eye(4, dtype=dt), fx=30.0, fy=30.0, cx=W / 2, cy=H / 2, width=W, height=H)
    return model, cam


def dense_recovery_score(model: GaussianModel, cam: Camera, background: torch.Tensor | None):
    """Brute force without tiles: every Gaussian at every pixel in depth order, per-pixel alphas
    as autograd leaves, S_k = sum_p (o_k G_k(p)) (dL/dalpha_k(p))^2."""
    with torch.no_grad():
        means, quats, scales, opac = model.means, model.quats, model.scales, model.opacities
        proj = tb.project(means, quats, scales, opac, cam)
        ids = torch.nonzero(proj.rendered).squeeze(1)
        ids = ids[torch.argsort(proj.depths[ids], stable=True)]
        W, H = cam.width, cam.height
        ys, xs = torch.meshgrid(torch.arange(H, dtype=means.dtype) + 0.5, torch.arange(W, dtype=means.dtype) + 0.5,
                                indexing="ij")
        dx = xs.reshape(1, -1) - proj.means2d[ids, :1]
        dy = ys.reshape(1, -1) - proj.means2d[ids, 1:]
        con = proj.conics[ids]
        sig = 0.5 * (con[:, :1] * dx * dx + con[:, 2:] * dy * dy) + con[:, 1:2] * dx * dy
        raw = opac[ids, None] * torch.exp(-sig)  # (M, HW)
        a = raw.clamp(max=0.99)
        a = torch.where((a >= 1 / 255) & (sig >= 0), a, torch.zeros_like(a))
        # stop before the Gaussian that takes T below 1e-4 (sequentially, as the CUDA loop)
        T = torch.ones(H * W, dtype=means.dtype)
        done = torch.zeros(H * W, dtype=torch.bool)
        for k in range(a.shape[0]):
            done |= (T * (1 - a[k]) < 1e-4) & (a[k] > 0)
            a[k] = torch.where(done, torch.zeros_like(a[k]), a[k])
            T = T * (1 - a[k])
        cols = tb._features(means, model.sh, cam, model.sh_degree, ids)  # (M,3)
    leaf = a.T[None].transpose(1, 2).clone().requires_grad_(True)  # (1, M, HW)
    bg = torch.zeros(3, dtype=means.dtype) if background is None else background
    loss, _ = composite_loss(leaf, cols[None], bg, torch.ones(1, H * W, dtype=torch.bool))
    (grad,) = torch.autograd.grad(loss, leaf)
    contrib = (a > 0).to(a.dtype)
    per = (raw * contrib * grad[0] ** 2).sum(1)
    score = torch.zeros(model.num_gaussians, dtype=means.dtype)
    score[ids] = per
    img = render(model, cam, backend="torch", background=background).image
    return score, loss.detach(), img


@pytest.mark.parametrize("bg", [None, (0.2, 0.7, 1.0)])
def test_recovery_score_equals_dense_brute_force(bg):
    model, cam = _small_model()
    background = None if bg is None else torch.tensor(bg, dtype=torch.float64)
    ref, loss, img = dense_recovery_score(model, cam, background)
    # the dense reference composites the same image as the renderer
    torch.testing.assert_close(img.clamp(0, 1).sum(), loss, rtol=1e-10, atol=1e-10)
    got = recovery_score_view(model, cam, background=background, tile_size=8)
    torch.testing.assert_close(got, ref, rtol=1e-8, atol=1e-12)
    assert (ref > 0).sum() >= 20
    # the batch size (the GPU default is 16x the CPU one) changes the batching only
    for chunk in (64 * 4, 1 << 24):
        again = recovery_score_view(model, cam, background=background, tile_size=8, chunk_elements=chunk)
        torch.testing.assert_close(again, ref, rtol=1e-8, atol=1e-12)
    # summing over views, and no gradient leaks into the model
    two = recovery_score(model, [cam, cam], background=background)
    torch.testing.assert_close(two, 2 * ref, rtol=1e-8, atol=1e-12)
    assert all(p.grad is None for p in model.params.values())


# ---------------------------------------------------------------------------- AOP
@pytest.mark.parametrize("q", [0.01, 0.05])
def test_each_prune_step_removes_the_configured_quantile(scene, q):
    model = random_opacity_model(scene)
    ctx = make_ctx(scene, model)
    s = ARGPStrategy(prune_quantile=q)
    s.initialize(ctx)
    s.state["ident"] = torch.arange(model.num_gaussians, dtype=torch.float64)
    for step in (600, 700, 2900):  # before the first reset: no big-point pruning
        assert s.is_refine_step(ctx, step)
        alpha = ctx.model.opacities.detach().clone()
        ident = s.state["ident"].clone()
        expected = alpha < torch.quantile(alpha, q)  # no gradient statistics: nothing densifies
        s.refine(ctx, step)
        assert ctx.model.num_gaussians == alpha.numel() - int(expected.sum())
        assert int(expected.sum()) == math.ceil(q * (alpha.numel() - 1))  # distinct opacities
        assert torch.equal(s.state["ident"], ident[~expected])
        assert ctx.model.opacities.min() >= alpha[expected].max()


def test_schedule_densification_ends_at_12k_and_irp_rounds():
    s = ARGPStrategy()

    class _Scene:
        white_background = False

    ctx = TrainContext(model=None, optimizer=None, scene=_Scene(), scene_extent=1.0, iterations=30_000,
                       backend="torch", device=torch.device("cpu"), background=torch.zeros(3))
    refine = [t for t in range(1, 30_001) if s.is_refine_step(ctx, t)]
    assert refine[0] == 600 and refine[-1] == 11_900
    assert [t for t in range(1, 30_001) if s.is_reset_step(ctx, t)] == [3000, 6000, 9000]
    acts = {t: s.irp_action(ctx, t) for t in range(1, 30_001) if s.irp_action(ctx, t)}
    assert acts == {12_000: "freeze", 15_000: "round", 18_000: "round", 21_000: "round", 24_000: "round",
                    27_000: "final"}
    ctx.iterations = 3000  # every schedule number scales with the run
    acts = {t: s.irp_action(ctx, t) for t in range(1, 3001) if s.irp_action(ctx, t)}
    assert sorted(acts) == [1200, 1500, 1800, 2100, 2400, 2700]


def test_quantile_matches_torch():
    x = torch.randn(1001, generator=torch.Generator().manual_seed(2))
    for q in (0.0, 0.01, 0.4, 0.7, 1.0):
        torch.testing.assert_close(quantile(x, q), torch.quantile(x, q))


# ---------------------------------------------------------------------------- freezing
@pytest.mark.parametrize("freeze_gradients", [True, False])
def test_frozen_gaussians_do_not_change_while_frozen(scene, freeze_gradients):
    torch.manual_seed(0)
    model = random_opacity_model(scene)
    ctx = make_ctx(scene, model)
    s = ARGPStrategy(freeze_gradients=freeze_gradients)
    s.initialize(ctx)
    train_steps(ctx, s, range(12_001, 12_003))  # warm Adam moments (densification is over)
    s.irp_round(ctx, 12_000, "freeze")
    frozen = s.frozen.clone()
    assert 0.65 < frozen.float().mean() < 0.75
    before = {k: v.detach().clone() for k, v in ctx.model.params.items()}
    train_steps(ctx, s, range(12_003, 12_006))
    moved_active = moved_frozen = False
    for k, v in ctx.model.params.items():
        if freeze_gradients:
            assert torch.equal(v.detach()[frozen], before[k][frozen]), k  # bit-identical
        moved_frozen |= not torch.equal(v.detach()[frozen], before[k][frozen])
        moved_active |= not torch.equal(v.detach()[~frozen], before[k][~frozen])
    assert moved_active
    # upstream's effective behaviour (moments zeroed, gradients flow) does move them
    assert moved_frozen == (not freeze_gradients)


def test_default_freezing_is_upstreams_moments_zeroed_never_restored(scene):
    """Upstream's hook never fires: frozen Gaussians train on; each freeze zeroes the Adam
    moments of every frozen row (earlier set and new one); recovered rows get no backup back
    (zeroed at a round, their current moments at the final one); the IRP iteration skips Adam."""
    torch.manual_seed(0)
    model = random_opacity_model(scene, seed=1)
    ctx = make_ctx(scene, model)
    s = ARGPStrategy()
    assert not s.argp.freeze_gradients
    s.initialize(ctx)
    train_steps(ctx, s, range(11_998, 12_000))
    s.state["ident"] = torch.arange(ctx.model.num_gaussians, dtype=torch.float64)
    p0 = ctx.model.params["means"]
    adam_steps = int(ctx.optimizer.state[p0]["step"])
    train_steps(ctx, s, range(12_000, 12_001))  # the first freeze, through the hooks
    assert int(ctx.optimizer.state[ctx.model.params["means"]]["step"]) == adam_steps  # step skipped
    old = s.frozen.clone()
    assert 0.65 < old.float().mean() < 0.75
    for p in ctx.model.params.values():
        assert torch.all(ctx.optimizer.state[p]["exp_avg"][old] == 0)
    before = {k: v.detach().clone() for k, v in ctx.model.params.items()}
    train_steps(ctx, s, range(12_001, 12_004))
    moved = any(not torch.equal(v.detach()[old], before[k][old]) for k, v in ctx.model.params.items())
    assert moved  # "frozen" Gaussians keep training
    assert not any(k.startswith("moment_backup") for k in s.state)
    n = ctx.model.num_gaussians
    s.scores = lambda _ctx: torch.rand(_ctx.model.num_gaussians, generator=torch.Generator().manual_seed(7))
    s.irp_round(ctx, 15_000, "round")
    ident = s.state["ident"].long()
    recovered = old[ident]  # rows of the earlier frozen set that survived
    assert 0 < int(recovered.sum()) < int(old.sum())
    for p in ctx.model.params.values():
        for k in ("exp_avg", "exp_avg_sq"):
            assert torch.all(ctx.optimizer.state[p][k][recovered | s.frozen] == 0)
    assert n > ctx.model.num_gaussians
    train_steps(ctx, s, range(15_001, 15_003))
    last = s.frozen.clone()
    moments = {k: ctx.optimizer.state[p]["exp_avg"].clone() for k, p in ctx.model.params.items()}
    s.state["ident"] = torch.arange(ctx.model.num_gaussians, dtype=torch.float64)
    s.irp_round(ctx, 27_000, "final")
    ident = s.state["ident"].long()
    rec = last[ident]
    assert bool(rec.any()) and s.frozen.sum() == 0
    for k, p in ctx.model.params.items():  # the final recovery keeps the current moments
        torch.testing.assert_close(ctx.optimizer.state[p]["exp_avg"][rec], moments[k][ident[rec]])


def test_recovered_are_the_highest_scored_and_get_their_moments_back(scene):
    torch.manual_seed(0)
    model = random_opacity_model(scene, seed=1)
    ctx = make_ctx(scene, model)
    s = ARGPStrategy(**get_method("argp").params_for("default"), freeze_gradients=True)  # true_freeze
    s.initialize(ctx)
    train_steps(ctx, s, range(12_001, 12_003))
    s.state["ident"] = torch.arange(ctx.model.num_gaussians, dtype=torch.float64)
    moments = {name: {k: ctx.optimizer.state[p][k].clone() for k in ("exp_avg", "exp_avg_sq")}
               for name, p in ctx.model.params.items()}
    s.irp_round(ctx, 12_000, "freeze")
    old = s.frozen.clone()
    for name, p in ctx.model.params.items():  # frozen rows' moments are zeroed
        assert torch.all(ctx.optimizer.state[p]["exp_avg"][old] == 0)
    train_steps(ctx, s, range(12_003, 12_004))
    n = ctx.model.num_gaussians
    score = torch.rand(n, generator=torch.Generator().manual_seed(7))
    s.scores = lambda _ctx: score  # the score itself is tested above
    alpha = ctx.model.opacities.detach().clone()
    s.irp_round(ctx, 15_000, "round")
    ident = s.state["ident"].long()
    kept = torch.zeros(n, dtype=torch.bool)
    kept[ident] = True
    recovered = kept & old
    expected = old & (score > torch.quantile(score[old], 0.6))
    assert torch.equal(recovered, expected)
    assert abs(recovered.sum() / old.sum() - 0.4) < 0.01
    assert torch.all(kept[~old])  # the active ones survive
    # the new frozen set: the 70% least opaque of the previously active ones
    new_frozen = torch.zeros(n, dtype=torch.bool)
    new_frozen[ident[s.frozen]] = True
    active = ~old
    assert torch.equal(new_frozen, active & (alpha < torch.quantile(alpha[active], 0.7)))
    # recovered rows got their pre-freeze Adam moments back
    rows = recovered[ident]
    for name, p in ctx.model.params.items():
        for k in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(ctx.optimizer.state[p][k][rows], moments[name][k][ident[rows]])
    # final round: recover/delete the last frozen set, nothing stays frozen
    s.scores = lambda _ctx: torch.rand(ctx.model.num_gaussians)
    n_frozen = int(s.frozen.sum())
    n_before = ctx.model.num_gaussians
    s.irp_round(ctx, 27_000, "final")
    assert s.frozen.sum() == 0 and not s.state["irp_frozen_any"]
    assert not any(k.startswith("moment_backup") for k in s.state)
    assert abs((n_before - ctx.model.num_gaussians) - 0.6 * n_frozen) <= 2


# ---------------------------------------------------------------------------- end to end
def test_registry_variants_are_an_rd_sweep():
    spec = get_method("argp")
    assert spec.default_variant in spec.variants and len(spec.variants) >= 4
    for name in spec.variants:
        ARGPStrategy(**spec.params_for(name))  # every variant constructs
    with pytest.raises(TypeError):
        ARGPStrategy(no_such_parameter=1)


@pytest.mark.slow
def test_train_argp_end_to_end(scene):
    """A short run: every densification step prunes the quantile, the IRP rounds happen on the
    scaled schedule and the model ends near 0.15 x its count at the first freeze."""
    cfg = TrainConfig(iterations=60, backend="torch", device="cpu", progress=False, seed=0, sh_degree=1,
                      min_refine_interval=2)  # one refinement every other step (Adam skips those)
    s = ARGPStrategy(grad_threshold=1e9)  # no clone/split: keeps the CPU run small
    pruned = []
    base_prune_mask = s.prune_mask

    def spy(ctx, step):
        mask = base_prune_mask(ctx, step)
        alpha = ctx.model.opacities.detach()
        pruned.append((int((mask & (alpha < torch.quantile(alpha, 0.01))).sum()),
                       math.ceil(0.01 * (alpha.numel() - 1))))
        return mask

    s.prune_mask = spy
    trainer = Trainer(scene, s, cfg)
    res = trainer.train()
    # every refinement step (2, 4, .., 22 at this scale) removed about 1%: at most ceil(q (n-1)),
    # fewer where opacities tie (unseen Gaussians keep the initial 0.1 early on; strict <, as upstream)
    assert len(pruned) == 11
    assert all(got <= want for got, want in pruned), pruned
    # (ties also right after the opacity reset at step 6: one Adam step before the next refinement)
    assert sum(got for got, _ in pruned) >= 0.5 * sum(want for _, want in pruned)
    rounds = trainer.ctx.log["argp_rounds"]
    assert [r["action"] for r in rounds] == ["freeze", "round", "round", "round", "round", "final"]
    assert [r["step"] for r in rounds] == [24, 30, 36, 42, 48, 54]
    frac = res.model.num_gaussians / rounds[0]["n_before"]
    assert 0.08 < frac < 0.25, frac
    # the rounds (with the time of each score pass) reach train_stats.json's method_log
    assert res.stats["method_log"]["argp_rounds"] == rounds
    assert all(r["score_seconds"] >= 0 for r in rounds if r["action"] != "freeze")
    assert all("seconds" in h for h in res.stats["history"])
