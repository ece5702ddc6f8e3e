"""GNS (methods/gns.md): budget, long-axis split, survival pressure, controller, end-to-end run
to exactly B Gaussians on a tiny generated scene (torch backend, CPU)."""

import json
import math

import pytest
import torch

from gs.methods.gns import (
    GNSConfig,
    GNSStrategy,
    budget_curve,
    edge_map,
    kth_largest,
    pressure_goal,
    update_pressure,
)
from gs.methods.registry import get_method
from gs.model import GaussianModel
from gs.render import render
from gs.render.base import Camera
from gs.train import ops
from gs.train.strategy import TrainContext


# ---------------------------------------------------------------------------- pure pieces
def test_controller_moves_lambda_the_right_way():
    # the B-th largest alpha below the goal: too much pressure -> weaker
    assert update_pressure(1.0, a_b=0.5, goal=1.0) == pytest.approx(0.8)
    # above the goal: survivors too opaque, too little pressure -> stronger
    assert update_pressure(1.0, a_b=2.0, goal=1.0) == pytest.approx(1.2)
    # inside the +-10 % band: unchanged
    assert update_pressure(1.0, a_b=1.05, goal=1.0) == 1.0
    assert update_pressure(1.0, a_b=0.95, goal=1.0) == 1.0
    # goal line: alpha_min at 15000, half at 18500, 0 at 22000 and after
    assert pressure_goal(0.4, 15_000) == pytest.approx(0.4)
    assert pressure_goal(0.4, 18_500) == pytest.approx(0.2)
    assert pressure_goal(0.4, 22_000) == 0.0 and pressure_goal(0.4, 22_900) == 0.0


def test_budget_curve_and_kth_largest():
    assert budget_curve(500, 100) == 0
    assert budget_curve(14_500, 100) == 300 and budget_curve(14_900, 100) == 300
    assert budget_curve(4000, 100) == int(math.sqrt(0.25) * 300)  # sqrt shape
    a = torch.tensor([0.1, 0.9, 0.5, 0.7])
    assert kth_largest(a, 1) == pytest.approx(0.9)
    assert kth_largest(a, 3) == pytest.approx(0.5)
    assert kth_largest(a, 10) == pytest.approx(0.1)


def test_budget_parameters():
    assert GNSConfig(budget=123).final_budget() == 123
    assert GNSConfig(budget_fraction=0.15, baseline_count=1000).final_budget() == 150
    assert GNSConfig(paper_budget=600_000, paper_budget_scale=0.4, budget_fraction=0.1,
                     baseline_count=10).final_budget() == 240_000
    with pytest.raises(ValueError, match="baseline_count"):
        GNSConfig(budget_fraction=0.15).final_budget()
    with pytest.raises(ValueError, match="no budget"):
        GNSConfig().final_budget()
    with pytest.raises(TypeError, match="unknown"):
        GNSStrategy(budget=10, nonsense=1)
    spec = get_method("gns")
    assert spec.default_variant == "15pct" and set(spec.variants) - set(spec.diagnostics) == {"5pct", "10pct", "15pct", "25pct", "40pct"}
    p = spec.params_for("15pct", "mipnerf360", "bicycle", {"baseline_count": 2000})
    assert GNSStrategy(**p).B == 300
    assert GNSStrategy(**spec.params_for("15pct", "tandt", "train", {"paper_budget_scale": 1.0})).B == 300_000


def test_edge_map_normalised():
    img = torch.zeros(8, 8, 3, dtype=torch.uint8)
    img[:, 4:] = 200
    e = edge_map(img)
    assert e.shape == (8, 8) and e.min() == 0 and e.max() == 1
    assert (e[1:-1, 4] == 1).all() and e[1:-1, :4].sum() == 0  # the step edge is found
    # PIL's FIND_EDGES keeps the border pixels of its input (as upstream); a flat image has no NaN
    flat = edge_map(torch.full((4, 4, 3), 7, dtype=torch.uint8))
    assert torch.isfinite(flat).all() and flat[1:-1, 1:-1].sum() == 0


def test_long_axis_split_geometry():
    params = dict(
        means=torch.zeros(1, 3), scales=torch.log(torch.tensor([[0.3, 0.1, 0.05]])),
        quats=torch.tensor([[1.0, 0, 0, 0]]), opacities=torch.logit(torch.tensor([0.5])),
        sh0=torch.zeros(1, 1, 3), shN=torch.zeros(1, 15, 3),
    )
    m = GaussianModel(params)
    ops.long_axis_split(m, None, torch.tensor([True]))
    assert m.num_gaussians == 2
    xs = sorted(m.means[:, 0].tolist())
    assert xs == pytest.approx([-0.3 * 1.35, 0.3 * 1.35])
    assert torch.allclose(m.means[:, 1:], torch.zeros(2, 2))
    h = math.sqrt(1 - 0.45 ** 2)
    assert torch.allclose(m.scales, torch.tensor([[0.3 * 0.55, 0.1 * h, 0.05 * h]] * 2), atol=1e-6)
    assert torch.allclose(m.opacities, torch.tensor([0.3, 0.3]), atol=1e-6)


# ---------------------------------------------------------------------------- pressure
def _two_group_model(n_front: int = 30, n_back: int = 30) -> GaussianModel:
    """Gaussians in front of a camera at the origin looking down +z, and as many behind it
    (never rendered, so they get no rendering gradient)."""
    g = torch.Generator().manual_seed(0)
    front = torch.cat([torch.rand(n_front, 2, generator=g) - 0.5, 2 + torch.rand(n_front, 1, generator=g)], 1)
    back = torch.cat([torch.rand(n_back, 2, generator=g) - 0.5, -2 - torch.rand(n_back, 1, generator=g)], 1)
    n = n_front + n_back
    return GaussianModel(dict(
        means=torch.cat([front, back]), scales=torch.full((n, 3), math.log(0.08)),
        quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1), opacities=torch.logit(torch.full((n,), 0.5)),
        sh0=torch.rand(n, 1, 3, generator=g), shN=torch.zeros(n, 0, 3),
    ))


def test_pressure_lowers_logits_of_unrendered_gaussians():
    cam = Camera(torch.eye(4), 20.0, 20.0, 12.0, 12.0, 24, 24)
    gt = torch.full((24, 24, 3), 0.5)

    def run(with_pressure: bool) -> torch.Tensor:
        model = _two_group_model()
        opt = ops.make_optimizer(model, {"means": 1e-4, "scales": 5e-3, "quats": 1e-3, "opacities": 0.025,
                                         "sh0": 2.5e-3, "shN": 1e-4})
        ctx = TrainContext(model=model, optimizer=opt, scene=None, scene_extent=1.0, iterations=3000,
                           backend="torch", device=torch.device("cpu"), background=torch.zeros(3))
        strat = GNSStrategy(budget=20)  # N = 60 > 1.05 B: selection keeps running
        strat.initialize(ctx)
        start = ctx.at(15_000)
        strat.events(ctx, start)  # selection starts: opacity lr x4
        assert ops.group_of(opt, "opacities")["lr"] == pytest.approx(0.1)
        added = 0
        for step in range(start + 1, start + 60):
            out = render(model, cam, backend="torch", background=ctx.background)
            loss = (out.image - gt).abs().mean()
            extra = strat.loss(ctx, step, out, gt)
            if extra is not None:
                added += 1
                if with_pressure:
                    loss = loss + extra
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        assert added >= 10  # gated every 50 recipe iterations = every 5th step of a 3000-step run
        assert model.num_gaussians == 60  # no death/cut in this window
        return model.params["opacities"].detach()

    v_on, v_off = run(True), run(False)
    v0 = torch.logit(torch.tensor(0.5))
    # unrendered Gaussians: untouched without the pressure, clearly pushed down with it
    assert torch.allclose(v_off[30:], torch.full((30,), float(v0)))
    assert v_on[30:].mean() < v0 - 0.5
    assert (v_on[30:] < v0).all()


# ---------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from gs.data import generate_scene, load_scene

    root = generate_scene(tmp_path_factory.mktemp("gns_scene") / "demo", seed=0, num_views=6, width=32,
                          height=24, num_points=200)
    return load_scene(root)


@pytest.mark.slow
def test_gns_run_ends_at_exact_budget(scene, tmp_path):
    from gs.methods.registry import train_method
    from gs.train.trainer import TrainConfig

    budget = 80
    cfg = TrainConfig(iterations=120, backend="torch", device="cpu", progress=False, seed=0, log_every=10)
    res = train_method(scene, "gns", {"budget": budget, "cams": 1}, tmp_path / "run", cfg)
    assert res.model.num_gaussians == budget
    peak = max(h["num_gaussians"] for h in res.stats["history"])
    assert peak > budget  # it densified above B and selection brought it down
    sel = json.loads((tmp_path / "run" / "gns_selection.json").read_text())
    assert sel["budget"] == budget and sel["cut_step"] is not None
    assert any("lambda" in e for e in sel["controller"])
    # the PLY loads and renders
    loaded = GaussianModel.load_ply(tmp_path / "run" / "point_cloud.ply")
    assert loaded.num_gaussians == budget
    with torch.no_grad():
        out = render(loaded, scene.test_cameras[0], backend="torch", background=scene.background)
        ref = render(res.model, scene.test_cameras[0], backend="torch", background=scene.background)
    assert torch.isfinite(out.image).all() and out.alpha.max() > 0.1
    assert torch.allclose(out.image, ref.image, atol=1e-5)


def test_resume_inside_selection_keeps_opacity_lr_boost():
    def ctx_for(model):
        opt = ops.make_optimizer(model, {"means": 1e-4, "scales": 5e-3, "quats": 1e-3, "opacities": 0.025,
                                         "sh0": 2.5e-3, "shN": 1e-4})
        return TrainContext(model=model, optimizer=opt, scene=None, scene_extent=1.0, iterations=3000,
                            backend="torch", device=torch.device("cpu"), background=torch.zeros(3))

    model = _two_group_model()
    ctx = ctx_for(model)
    strat = GNSStrategy(budget=20)
    strat.initialize(ctx)
    strat.events(ctx, ctx.at(15_000))
    assert ops.group_of(ctx.optimizer, "opacities")["lr"] == pytest.approx(0.1)
    # a resumed run rebuilds the optimizer at the base lr; the strategy re-applies the x4
    ctx2 = ctx_for(model)
    strat2 = GNSStrategy(budget=20)
    strat2.load_state_dict(strat.state_dict())
    strat2.initialize(ctx2)
    assert ops.group_of(ctx2.optimizer, "opacities")["lr"] == pytest.approx(0.1)
    # the cut (here forced at reg_end) keeps exactly B; the lr returns 1000 recipe iterations later
    strat2.events(ctx2, ctx2.at(23_000))
    assert ctx2.model.num_gaussians == 20
    strat2.events(ctx2, ctx2.at(24_000))
    assert ops.group_of(ctx2.optimizer, "opacities")["lr"] == pytest.approx(0.025)


@pytest.mark.parametrize("sparse", [True, False])
def test_optimizer_steps_after_20k_follow_upstream(sparse):
    """Upstream train.py: after 20k the optimizer steps every 5th iteration up to 24k and every
    20th after (never at the last one), on the gradients summed since the previous step. A
    300-iteration run: 20k -> 200, 24k -> 240; steps 201..300 -> 8 + 2 Adam steps (dense: 100)."""
    model = _two_group_model()
    opt = ops.make_optimizer(model, {k: 1e-3 for k in model.params})
    ctx = TrainContext(model=model, optimizer=opt, scene=None, scene_extent=1.0, iterations=300,
                       backend="torch", device=torch.device("cpu"), background=torch.zeros(3))
    strat = GNSStrategy(budget=60, sparse_steps=sparse)
    strat.initialize(ctx)
    strat.state.update(phase=2, cut_step=ctx.at(23_000), lr_restored=True)  # selection is over
    since = 0
    for step in range(151, 301):
        for p in model.params.values():
            p.grad = torch.ones_like(p)
        strat.after_backward(ctx, step, None)
        since += 1
        g = model.params["opacities"].grad
        if g is not None:  # Adam steps here, on the sum of the views since its last step
            assert torch.all(g == since)
            since = 0
        opt.step()
        opt.zero_grad(set_to_none=True)
    adam_steps = int(opt.state[model.params["means"]]["step"])
    assert adam_steps == 50 + (10 if sparse else 100)
    assert model.num_gaussians == 60
