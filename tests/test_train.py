"""The baseline trainer on a tiny generated scene (torch backend, CPU)."""

import math

import numpy as np
import pytest
import torch

from gs.data import generate_scene, load_scene
from gs.methods.registry import train_method
from gs.model import GaussianModel
from gs.render import render
from gs.train.trainer import TrainConfig, TrainingDiverged, expon_lr


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    root = generate_scene(tmp_path_factory.mktemp("scene") / "demo", seed=0, num_views=16, width=64, height=48)
    return load_scene(root)


def test_psnr(model, sc):
    vals = []
    with torch.no_grad():
        for cam, img in zip(sc.test_cameras, sc.test_images):
            out = render(model, cam, backend="torch", background=sc.background).image.clamp(0, 1)
            mse = ((out - img.float() / 255) ** 2).mean().item()
            vals.append(-10 * math.log10(mse))
    return sum(vals) / len(vals)


test_psnr.__test__ = False  # a helper, not a test


def test_expon_lr_endpoints():
    assert expon_lr(0, 1e-2, 1e-4, 100) == pytest.approx(1e-2)
    assert expon_lr(100, 1e-2, 1e-4, 100) == pytest.approx(1e-4)
    assert expon_lr(50, 1e-2, 1e-4, 100) == pytest.approx(1e-3)


@pytest.mark.slow
def test_baseline_improves_test_psnr_and_densifies(scene, tmp_path):
    init = GaussianModel.from_points(scene.points, scene.colors)
    before = test_psnr(init, scene)
    cfg = TrainConfig(iterations=300, backend="torch", device="cpu", progress=False, seed=0)
    res = train_method(scene, "3dgs", {}, tmp_path / "run", cfg)
    after = test_psnr(res.model, scene)
    assert after > before + 5.0, (before, after)
    assert res.model.num_gaussians > init.num_gaussians  # densification grew the model
    loaded = GaussianModel.load_ply(tmp_path / "run" / "point_cloud.ply")
    assert loaded.num_gaussians == res.model.num_gaussians
    assert (tmp_path / "run" / "train_stats.json").is_file()


@pytest.mark.slow
def test_resume_continues_from_last_checkpoint(scene, tmp_path):
    import shutil

    cfg = TrainConfig(iterations=60, backend="torch", device="cpu", progress=False, checkpoint_every=30,
                      keep_checkpoints=5)
    # one CPU thread: multi-threaded CPU kernels sum in a varying order, one thread makes the run
    # bit-reproducible, so the resumed run can be held to exact equality
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        full = train_method(scene, "3dgs", {}, tmp_path / "full", cfg)
        # a job killed after iteration 30: only that checkpoint, no final outputs
        part = tmp_path / "part"
        (part / "checkpoints").mkdir(parents=True)
        shutil.copy(tmp_path / "full" / "checkpoints" / "ckpt_30.pt", part / "checkpoints")
        resumed = train_method(scene, "3dgs", {}, part, cfg)
    finally:
        torch.set_num_threads(threads)
    assert resumed.stats["resumed_from"].endswith("ckpt_30.pt")
    # same seed, same data: the resumed run ends exactly where the uninterrupted one did
    assert resumed.model.num_gaussians == full.model.num_gaussians
    for name, p in full.model.params.items():
        assert torch.equal(resumed.model.params[name], p), name


def test_training_leaves_the_scene_untouched(scene):
    """The CPU model must not share memory with the scene's arrays (Adam updates in place)."""
    points, colors = scene.points.copy(), scene.colors.copy()
    cfg = TrainConfig(iterations=20, backend="torch", device="cpu", progress=False, seed=0)
    train_method(scene, "3dgs", {}, None, cfg)
    assert np.array_equal(scene.points, points) and np.array_equal(scene.colors, colors)
    # and two runs from the same Scene object are the same run
    with_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = train_method(scene, "3dgs", {}, None, cfg).model
        b = train_method(scene, "3dgs", {}, None, cfg).model
    finally:
        torch.set_num_threads(with_threads)
    assert a.num_gaussians == b.num_gaussians and torch.equal(a.means, b.means)


def test_nan_loss_stops_with_clear_error(scene, tmp_path):
    from gs.train.strategy import Strategy

    class Poison(Strategy):
        def loss(self, ctx, step, out, gt):
            return torch.tensor(float("nan"))

    from gs.train.trainer import Trainer

    t = Trainer(scene, Poison(), TrainConfig(iterations=5, backend="torch", device="cpu", progress=False, log_every=5))
    with pytest.raises(TrainingDiverged, match="NaN"):
        t.train()


@pytest.mark.slow
def test_snapshots_are_taken_before_the_step_densifies(scene, tmp_path):
    """As upstream, the PLY of iteration i is saved after its backward pass and before its
    optimizer step and densification: a snapshot at a refinement step must not contain that
    step's fresh clones and split children."""
    from gs.methods.baseline import BaselineStrategy
    from gs.train.trainer import Trainer

    class Recording(BaselineStrategy):
        def __init__(self):
            super().__init__()
            self.counts = {}

        def density_control(self, ctx, step):
            before = ctx.model.num_gaussians
            super().density_control(ctx, step)
            self.counts[step] = (before, ctx.model.num_gaussians)

    steps = tuple(range(10, 150, 10))  # the refinement steps of a 300-iteration schedule
    cfg = TrainConfig(iterations=300, backend="torch", device="cpu", progress=False, seed=0, save_iterations=steps)
    strategy = Recording()
    Trainer(scene, strategy, cfg, tmp_path / "run").train()
    changed = 0
    for s in steps:
        before, after = strategy.counts[s]
        assert GaussianModel.load_ply(tmp_path / "run" / f"point_cloud_{s}.ply").num_gaussians == before
        changed += before != after
    assert changed > 0  # some of these steps did densify, so the test tells the two orders apart


def test_trainer_takes_a_strategy_not_a_method_id(scene):
    """The trainer never looks a method up: the caller builds the Strategy (here by hand) and
    gets the same run as through the registry."""
    import ast
    from pathlib import Path

    import gs.train.trainer as trainer
    from gs.methods.baseline import BaselineStrategy
    from gs.train.trainer import train_strategy

    tree = ast.parse(Path(trainer.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not [m for m in imported if m and m.startswith("gs.methods")]
    cfg = TrainConfig(iterations=20, backend="torch", device="cpu", progress=False, seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bitwise-equal runs
    try:
        a = train_strategy(scene, BaselineStrategy(), None, cfg, meta={"method": "3dgs"})
        b = train_method(scene, "3dgs", {}, None, cfg)
    finally:
        torch.set_num_threads(threads)
    assert a.stats["method"] == b.stats["method"] == "3dgs" and a.stats["scene"] == scene.name
    assert torch.equal(a.model.means, b.model.means)


@pytest.mark.parametrize("before_step", [True, False])
def test_baseline_refines_before_the_optimizer_step(scene, before_step):
    """Upstream train.py densifies between the backward pass and the Adam step; the replaced
    parameters then have no gradient and Adam skips that iteration (its step count stays)."""
    from gs.methods.baseline import BaselineStrategy
    from gs.train import ops
    from gs.train.strategy import TrainContext

    model = GaussianModel.from_points(scene.points, scene.colors, sh_degree=0)
    opt = ops.make_optimizer(model, {k: 1e-3 for k in model.params})
    ctx = TrainContext(model=model, optimizer=opt, scene=scene, scene_extent=scene.extent, iterations=30_000,
                       backend="torch", device=model.device, background=scene.background)
    strategy = BaselineStrategy(refine_before_step=before_step)
    strategy.initialize(ctx)
    cam, gt = scene.train_cameras[0], scene.train_images[0].float() / 255

    def iteration(step):
        out = render(ctx.model, cam, backend="torch", sh_degree=0, background=ctx.background)
        (out.image - gt).abs().mean().backward()
        strategy.after_backward(ctx, step, out)
        ctx.optimizer.step()
        ctx.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            strategy.after_step(ctx, step, out)

    iteration(599)  # an ordinary step: Adam state exists, step count 1
    strategy.state["grad_accum"][:5] = 1.0  # five Gaussians qualify at the refinement step 600
    n0 = ctx.model.num_gaussians
    iteration(600)
    assert ctx.model.num_gaussians != n0
    adam_steps = int(ctx.optimizer.state[ctx.model.params["means"]]["step"])
    assert adam_steps == (1 if before_step else 2)
