"""The training loop shared by every training method (methods/baseline-3dgs.md).

Adam (eps 1e-15) with one group per attribute, exponential position lr, SH degree +1 every
1000 iterations, loss 0.8 L1 + 0.2 (1 - SSIM), one training view per step drawn without
replacement per epoch. The method's :class:`~gs.train.strategy.Strategy` decides densification,
pruning and extra losses. One ``iterations`` knob scales every schedule (``TrainContext.at``).

The hot loop keeps images on the device and avoids host syncs: the loss is read back only
when the progress bar refreshes, and a non-finite loss (which poisons the parameters for good)
is caught at that point: training then stops with a clear error naming the iteration. On the
GPU the loss runs as CUDA graphs and Adam takes a short host path (``gs/train/loss.py``,
``ops.FusedAdam``): on small scenes a step is bound by host overhead, not by the rasterizer.
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gs.data.scene import Scene
from gs.io import write_json
from gs.model import GaussianModel, init_knn
from gs.render import get_backend, resolve_backend_name
from gs.render.base import RenderOutput
from gs.runtime import gpu_sharing
from gs.train import ops
from gs.train.loss import TrainingLoss, photometric_loss
from gs.train.strategy import REFERENCE_ITERATIONS, Strategy, TrainContext


@dataclass
class TrainConfig:
    iterations: int = 30_000
    seed: int = 0
    backend: str = "auto"
    device: str = "auto"
    sh_degree: int = 3
    # learning rates (methods/baseline-3dgs.md, 2024 code's opacity lr)
    position_lr_init: float = 1.6e-4
    position_lr_final: float = 1.6e-6
    feature_lr: float = 2.5e-3
    opacity_lr: float = 0.025
    scaling_lr: float = 5e-3
    rotation_lr: float = 1e-3
    lambda_dssim: float = 0.2
    sh_increase_interval: int = 1000  # 30k-recipe units
    checkpoint_every: int = 0  # run iterations; 0 = only at the end of training
    keep_checkpoints: int = 1
    save_iterations: tuple[int, ...] = ()  # extra PLY snapshots (run iterations; taken as upstream, see train())
    init_checkpoint: str | None = None  # start from another run's checkpoint (e.g. baseline @15k)
    prefix_iterations: tuple[int, ...] = ()  # run iterations saved as prefix_<it>.pt for other runs
    progress: bool = True
    log_every: int = 50  # progress bar refresh and NaN check interval
    # The 2024 3DGS code (the reference of our acceptance runs, and the code ARGP and EDIM
    # fork) clamps the rendered image to [0, 1] before the loss: saturated pixels then give
    # no gradient, which also changes what densifies. The 2023 code did not (False).
    clamp_render: bool = True
    min_refine_interval: int = 10  # see TrainContext.min_refine_interval

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


@dataclass
class TrainResult:
    model: GaussianModel
    stats: dict[str, Any] = field(default_factory=dict)


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


class TrainingCollapsed(ValueError):
    """Training pruned every Gaussian: there is no model to save."""


COLLAPSE_MIN_FRACTION = 0.01  # fewer final Gaussians than this fraction of the initial points
COLLAPSE_TAIL = 5  # logged PSNRs averaged at the end (one random training view each)


def collapse(history: list[dict[str, Any]], initial_points: int, final_count: int,
             from_scratch: bool = True) -> dict[str, Any] | None:
    """Why a finished run looks collapsed, or None: its Gaussian count ended below 1 % of the
    initial points, or (for a run trained from its first iteration here, whose first logged
    PSNR is that of the barely trained model) the training-view PSNR at the end (mean of the
    last logged values) fell below its first logged value. Such a run returns a model, but not
    a result to compare; ``train_stats.json`` records this as ``collapse`` and tables show it."""
    if initial_points > 0 and final_count < COLLAPSE_MIN_FRACTION * initial_points:
        return {"reason": f"{final_count} Gaussians at the end, below {COLLAPSE_MIN_FRACTION:.0%} of the "
                          f"{initial_points} initial points", "kind": "gaussian_count",
                "num_gaussians": final_count, "initial_points": initial_points}
    psnrs = [h["psnr"] for h in history if h.get("psnr") is not None]
    if from_scratch and len(psnrs) >= 2:
        tail = psnrs[1:][-COLLAPSE_TAIL:]
        end = float(np.mean(tail))
        if end < psnrs[0]:
            return {"reason": f"training-view PSNR fell from {psnrs[0]:.2f} dB (first logged) to {end:.2f} dB "
                              f"(mean of the last {len(tail)} logged)", "kind": "psnr",
                    "first_psnr": psnrs[0], "final_psnr": end}
    return None


def expon_lr(step: int, lr_init: float, lr_final: float, max_steps: int) -> float:
    """Upstream get_expon_lr_func without delay: log-linear from lr_init to lr_final."""
    t = min(max(step / max(max_steps, 1), 0.0), 1.0)
    return math.exp((1 - t) * math.log(lr_init) + t * math.log(lr_final))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _optimizer_state_by_name(opt: torch.optim.Optimizer) -> dict[str, Any]:
    out = {}
    for g in opt.param_groups:
        p = g["params"][0]
        st = opt.state.get(p, {})
        out[g["name"]] = {"lr": g["lr"], "state": {k: (v.detach().cpu() if torch.is_tensor(v) else v)
                                                   for k, v in st.items()}}
    return out


def _load_optimizer_state_by_name(opt: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """Restore Adam moments group by group, matched by name and shape (robust to methods
    that add groups)."""
    for g in opt.param_groups:
        entry = saved.get(g["name"])
        if entry is None:
            continue
        p = g["params"][0]
        st = entry["state"]
        if "exp_avg" in st and st["exp_avg"].shape != p.shape:
            continue
        opt.state[p] = {k: (v.to(p.device) if torch.is_tensor(v) and k != "step" else v) for k, v in st.items()}
        if "step" in opt.state[p] and torch.is_tensor(opt.state[p]["step"]):
            # fused Adam wants the step on the param's device, plain Adam on the CPU
            opt.state[p]["step"] = opt.state[p]["step"].to(p.device if opt.defaults.get("fused") else "cpu")


def save_checkpoint(path: Path, ctx: TrainContext, strategy: Strategy, view_state: dict,
                    train_seconds: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "step": ctx.step,
        "iterations": ctx.iterations,
        "sh_degree": ctx.model.sh_degree,
        "active_sh_degree": ctx.active_sh_degree,
        "params": {k: v.detach().cpu() for k, v in ctx.model.params.items()},
        "optimizer": _optimizer_state_by_name(ctx.optimizer),
        "strategy": {k: (v.detach().cpu() if torch.is_tensor(v) else v) for k, v in strategy.state_dict().items()},
        "strategy_class": type(strategy).__name__,
        "train_seconds": train_seconds,
        "views": view_state,
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    cands = sorted(ckpt_dir.glob("ckpt_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    return cands[-1] if cands else None


class ViewSampler:
    """One random training view per step, without replacement within an epoch."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.gen = torch.Generator().manual_seed(seed)
        self.stack: list[int] = []

    def next(self) -> int:
        if not self.stack:
            self.stack = torch.randperm(self.n, generator=self.gen).tolist()
        return self.stack.pop()

    def state(self) -> dict:
        return {"stack": list(self.stack), "gen": self.gen.get_state()}

    def load(self, st: dict) -> None:
        self.stack = list(st["stack"])
        self.gen.set_state(st["gen"])


class Trainer:
    def __init__(self, scene: Scene, strategy: Strategy, config: TrainConfig,
                 out_dir: str | Path | None = None, init_model: GaussianModel | None = None,
                 label: str = "", meta: dict[str, Any] | None = None) -> None:
        self.scene, self.strategy, self.cfg = scene, strategy, config
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.label = label
        self.meta = dict(meta or {})
        self.meta.setdefault("init_knn", init_knn() if init_model is None else "none (given model)")
        self.device = config.resolved_device()
        _seed_everything(config.seed)
        model = init_model if init_model is not None else GaussianModel.from_points(
            scene.points, scene.colors, sh_degree=config.sh_degree)
        self.model = model.to(self.device)
        self.rasterize = get_backend(config.backend, self.device)
        self.backend_name = resolve_backend_name(config.backend, self.device)
        self.cameras = [c.to(self.device) for c in scene.train_cameras]
        # images stay on the device as uint8; converted per step (cheap, no host transfer)
        self.images = [im.to(self.device) for im in scene.train_images]
        self.sampler = ViewSampler(len(self.cameras), config.seed)
        E = scene.extent
        self.lrs = {
            "means": config.position_lr_init * E,
            "scales": config.scaling_lr,
            "quats": config.rotation_lr,
            "opacities": config.opacity_lr,
            "sh0": config.feature_lr,
            "shN": config.feature_lr / 20.0,
        }
        self.lrs.update(strategy.lr_overrides)
        self.optimizer = ops.make_optimizer(self.model, {k: self.lrs.get(k, config.feature_lr) for k in self.model.params})
        self.ctx = TrainContext(
            model=self.model, optimizer=self.optimizer, scene=scene, scene_extent=E,
            iterations=config.iterations, backend=self.backend_name, device=self.device,
            background=scene.background.to(self.device), seed=config.seed,
            min_refine_interval=config.min_refine_interval,
        )
        # the photometric loss, as CUDA graphs on the GPU (gs/train/loss.py: host overhead)
        self.loss_fn = TrainingLoss(config.lambda_dssim, config.clamp_render)
        self.prior_seconds = 0.0  # training time of earlier attempts of this run (resume)
        self.ctx.log["artifacts"] = {}
        self.history: list[dict[str, Any]] = []
        self._t0: float | None = None

    # ------------------------------------------------------------------ checkpoints
    @property
    def ckpt_dir(self) -> Path | None:
        return self.out_dir / "checkpoints" if self.out_dir else None

    def _restore(self, path: Path, own_run: bool) -> None:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        sh_degree = ck.get("sh_degree", self.model.sh_degree)
        self.model = GaussianModel({k: v.to(self.device) for k, v in ck["params"].items()}, sh_degree)
        self.optimizer = ops.make_optimizer(self.model, {k: self.lrs.get(k, self.cfg.feature_lr) for k in self.model.params})
        _load_optimizer_state_by_name(self.optimizer, ck["optimizer"])
        self.ctx.model, self.ctx.optimizer = self.model, self.optimizer
        # a checkpoint of another schedule length is mapped onto this run's schedule
        self.ctx.step = int(round(ck["step"] * self.cfg.iterations / ck.get("iterations", self.cfg.iterations)))
        self.ctx.active_sh_degree = ck.get("active_sh_degree", 0)
        if own_run:
            self.prior_seconds = float(ck.get("train_seconds", 0.0))
            if ck.get("strategy_class") == type(self.strategy).__name__:
                self.strategy.load_state_dict({k: (v.to(self.device) if torch.is_tensor(v) else v)
                                               for k, v in ck["strategy"].items()})
            self.sampler.load(ck["views"])
            rng = ck["rng"]
            torch.set_rng_state(rng["torch"])
            np.random.set_state(rng["numpy"])
            random.setstate(rng["python"])
            if rng.get("cuda") is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])

    def _checkpoint(self) -> None:
        if self.ckpt_dir is None:
            return
        path = self.ckpt_dir / f"ckpt_{self.ctx.step}.pt"
        elapsed = self.prior_seconds + (time.perf_counter() - self._t0 if self._t0 is not None else 0.0)
        save_checkpoint(path, self.ctx, self.strategy, self.sampler.state(), elapsed)
        old = sorted(self.ckpt_dir.glob("ckpt_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
        for p in old[: max(0, len(old) - self.cfg.keep_checkpoints)]:
            p.unlink(missing_ok=True)

    # ------------------------------------------------------------------ loop
    def render(self, cam) -> RenderOutput:
        ctx, m, s = self.ctx, self.model, self.strategy
        over = dict(s.render_params(ctx) or {})
        op = s.render_opacities(ctx)  # always called: a strategy may keep what it returns
        if op is not None:
            over.setdefault("opacities", op)
        # activations (exp, sigmoid, SH concat) only for what the strategy does not override;
        # raw quaternions: every backend normalises them (gsplat inside its projection kernel)
        scales = over["scales"] if "scales" in over else m.scales
        opacities = over["opacities"] if "opacities" in over else m.opacities
        sh = over["sh"] if "sh" in over else m.sh
        return self.rasterize(over.get("means", m.params["means"]), over.get("quats", m.params["quats"]),
                              scales, opacities, sh, cam, sh_degree=ctx.active_sh_degree,
                              background=ctx.background, **s.render_options(ctx))

    def train(self) -> TrainResult:
        cfg, ctx, strategy = self.cfg, self.ctx, self.strategy
        resumed_from = None
        if self.ckpt_dir is not None and (last := latest_checkpoint(self.ckpt_dir)) is not None:
            self._restore(last, own_run=True)
            resumed_from = str(last)
        elif cfg.init_checkpoint:
            self._restore(Path(cfg.init_checkpoint), own_run=False)
            resumed_from = str(cfg.init_checkpoint)
        strategy.initialize(ctx)
        self.optimizer = ctx.optimizer  # a strategy may have rebuilt it
        sh_every = ctx.every(cfg.sh_increase_interval)
        max_steps = strategy.num_iterations(ctx)
        start = ctx.step + 1
        bar = None
        if cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=max_steps, initial=ctx.step, desc=f"train {self.label}".strip(),
                       dynamic_ncols=True, mininterval=1.0)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            torch.cuda.synchronize(self.device)
        t0 = self._t0 = time.perf_counter()
        last_loss = float("nan")
        for step in range(start, max_steps + 1):
            ctx.step = step
            ops.set_lr(ctx.optimizer, "means", expon_lr(step, self.lrs["means"],
                                                        cfg.position_lr_final * self.scene.extent, cfg.iterations))
            if step % sh_every == 0 and ctx.active_sh_degree < ctx.model.sh_degree:
                ctx.active_sh_degree += 1
            idx = self.sampler.next()
            cam = self.cameras[idx]
            ctx.camera = cam
            gt = self.images[idx].float() / 255.0
            out = self.render(cam)
            loss = self.loss_fn(out.image, gt)
            extra = strategy.loss(ctx, step, out, gt)
            if extra is not None:
                loss = loss + extra
            loss.backward()
            if step in cfg.save_iterations and self.out_dir is not None:
                # Upstream saves iteration i's snapshot here: after its backward pass, before its
                # optimizer step and its densification. Saved after a refinement step instead,
                # the "7k" model would hold that step's unoptimised clones (drawn twice) and
                # split children.
                ctx.model.save_ply(self.out_dir / f"point_cloud_{step}.ply")
            strategy.after_backward(ctx, step, out)
            ctx.optimizer.step()
            ctx.optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                strategy.after_step(ctx, step, out)
            if step % cfg.log_every == 0 or step == max_steps:
                # A non-finite loss poisons the parameters for good, so checking at the
                # refresh steps (already a host sync) catches it without a sync per step.
                if not bool(torch.isfinite(loss.detach())):
                    raise TrainingDiverged(
                        f"training {self.label or self.scene.name}: the loss became NaN/inf by iteration {step} "
                        f"(view '{cam.name}'); lower the learning rates or check the input data")
                last_loss = float(loss.detach())
                mse = float(((out.image.detach().clamp(0, 1) - gt) ** 2).mean())
                psnr = -10 * math.log10(max(mse, 1e-10))
                # wall seconds so far (the loss read above synchronised): per-phase timings of a run
                self.history.append({"step": step, "loss": last_loss, "psnr": psnr, "num_gaussians": ctx.model.num_gaussians,
                                     "seconds": round(self.prior_seconds + time.perf_counter() - t0, 3)})
                if bar is not None:
                    bar.set_postfix(loss=f"{last_loss:.4f}", psnr=f"{psnr:.2f}", n=ctx.model.num_gaussians, refresh=False)
            if bar is not None:
                bar.update(1)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < max_steps:
                self._checkpoint()
            if step in cfg.prefix_iterations and self.out_dir is not None:
                # kept apart from the rotating checkpoints: other runs start from it
                save_checkpoint(self.out_dir / f"prefix_{step}.pt", ctx, strategy, self.sampler.state(),
                                self.prior_seconds + time.perf_counter() - t0)
        with torch.no_grad():
            strategy.finalize(ctx)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = self.prior_seconds + time.perf_counter() - t0
        if math.isnan(last_loss) and self.history:
            last_loss = self.history[-1]["loss"]
        if bar is not None:
            bar.close()
        self.model = ctx.model
        stats = {
            "iterations": max_steps,
            "train_seconds": seconds,
            "resumed_from": resumed_from,
            "num_gaussians": self.model.num_gaussians,
            "backend": self.backend_name,
            "device": str(self.device),
            "gpu_sharing": gpu_sharing() if self.device.type == "cuda" else None,
            "peak_memory_bytes": int(torch.cuda.max_memory_allocated(self.device)) if self.device.type == "cuda" else None,
            "peak_memory_bytes_reason": None if self.device.type == "cuda" else "CPU run: GPU memory not applicable",
            "seed": cfg.seed,
            "final_loss": last_loss,
            "history": self.history,
            # what the strategy recorded (GNS's pressure controller, ARGP's rounds, warnings)
            "method_log": {k: v for k, v in self.ctx.log.items() if k != "artifacts"},
            "config": {k: v for k, v in asdict(cfg).items() if k not in ("progress",)},
            **self.meta,
        }
        stats["collapse"] = collapse(self.history, len(self.scene.points), self.model.num_gaussians,
                                     from_scratch=start == 1)
        if self.model.num_gaussians == 0:
            gone = next((h["step"] for h in self.history if h["num_gaussians"] == 0), max_steps)
            raise TrainingCollapsed(
                f"training {self.label or self.scene.name}: every Gaussian was pruned by iteration {gone}, "
                f"there is no model to save; lower the learning rates (e.g. opacity_lr) or check the params")
        if stats["collapse"] is not None:
            print(f"warning: training {self.label or self.scene.name} collapsed: {stats['collapse']['reason']}; "
                  f"the model is written but is not a result to compare (check the learning rates and params)",
                  file=sys.stderr)
        if self.out_dir is not None:
            self._checkpoint()
            self.write_outputs(stats)
        return TrainResult(self.model, stats)

    def write_outputs(self, stats: dict[str, Any]) -> None:
        out = self.out_dir
        assert out is not None
        out.mkdir(parents=True, exist_ok=True)
        for name, value in ctx_artifacts(self.ctx).items():
            path = out / name
            tmp = path.with_name(path.name + ".tmp")
            if isinstance(value, (bytes, bytearray)):
                tmp.write_bytes(value)
            elif isinstance(value, dict):
                with open(tmp, "wb") as f:
                    np.savez(f, **{k: np.asarray(v) for k, v in value.items()})
            else:
                with open(tmp, "wb") as f:
                    np.save(f, np.asarray(value))
            tmp.replace(path)
        stats = dict(stats, artifacts=sorted(ctx_artifacts(self.ctx)))
        write_json(out / "train_stats.json", stats)
        self.model.save_ply(out / "point_cloud.ply")


def ctx_artifacts(ctx: TrainContext) -> dict[str, Any]:
    return ctx.log.get("artifacts", {})


def train_strategy(scene: Scene, strategy: Strategy, out_dir: str | Path | None, config: TrainConfig,
                   init_model: GaussianModel | None = None, meta: dict[str, Any] | None = None) -> TrainResult:
    """Train with ``strategy`` (built by the caller, e.g. from the method registry) on
    ``scene``; writes point_cloud.ply, train_stats.json and checkpoints/ into ``out_dir``
    (resuming from its last checkpoint). ``meta`` (method id, params...) goes into the stats."""
    meta = dict(meta or {})
    meta.setdefault("scene", scene.name)
    label = f"{scene.name}/{meta.get('method', type(strategy).__name__)}"
    trainer = Trainer(scene, strategy, config, out_dir, init_model=init_model, label=label, meta=meta)
    return trainer.train()


__all__ = ["REFERENCE_ITERATIONS", "TrainConfig", "TrainResult", "Trainer", "TrainingDiverged",
           "TrainingCollapsed", "train_strategy", "collapse", "write_json", "expon_lr", "photometric_loss"]
