"""Benchmark: where does a baseline training iteration spend its time?

    python benchmarks/profile_loop.py --data .data --scene fern:images_4 --stop 16000 --out DIR

Trains the baseline with the 30k schedule up to ``--stop`` and records
- wall milliseconds per iteration over windows of ``--window`` steps (synchronised at the
  window edges) with the Gaussian count, and
- a torch.profiler trace of ``--profile-steps`` iterations starting at ``--profile-at``: the
  operators that cost most host time and most device time, and device-busy time per step
  against wall time per step (when the device is idle most of the step, the loop is bound by
  host overhead, not by the rasterizer).
Writes ``profile.md`` (and ``windows.json``) into ``--out``. No figure here is asserted by a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from gs.data import load_scene  # noqa: E402
from gs.methods.baseline import BaselineStrategy  # noqa: E402
from gs.train.trainer import TrainConfig, Trainer  # noqa: E402


class _Stop(Exception):
    pass


class ProbedBaseline(BaselineStrategy):
    """The baseline strategy plus timing windows and one profiler window."""

    def __init__(self, window: int, profile_at: int, profile_steps: int, stop: int) -> None:
        super().__init__()
        self.window, self.profile_at, self.profile_steps, self.stop = window, profile_at, profile_steps, stop
        self.windows: list[dict] = []
        self._t = None
        self.prof = None
        self.profile_wall = None

    def after_step(self, ctx, step, out) -> None:
        super().after_step(ctx, step, out)
        if step == self.profile_at:
            torch.cuda.synchronize()
            self.prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                                           torch.profiler.ProfilerActivity.CUDA])
            self.prof.__enter__()
            self._pt = time.perf_counter()
        if self.prof is not None and step == self.profile_at + self.profile_steps:
            torch.cuda.synchronize()
            self.profile_wall = (time.perf_counter() - self._pt) / self.profile_steps
            self.prof.__exit__(None, None, None)
        if step % self.window == 0:
            torch.cuda.synchronize()
            now = time.perf_counter()
            if self._t is not None:
                self.windows.append({"end_step": step, "ms_per_it": 1000 * (now - self._t) / self.window,
                                     "num_gaussians": ctx.model.num_gaussians})
                print(f"step {step}: {self.windows[-1]['ms_per_it']:.2f} ms/it, {ctx.model.num_gaussians} G",
                      flush=True)
            self._t = now
        if step >= self.stop:
            raise _Stop



def parse_scene(arg: str) -> tuple[str, dict]:
    """``name:images_4``, ``name:r2`` (resolution divisor) or both (``name:images_4:r2``)."""
    name, *specs = arg.split(":")
    kw: dict = {}
    for spec in specs:
        if spec.startswith("images"):
            kw["images"] = spec
        elif spec.startswith("r") and spec[1:].isdigit():
            kw["resolution"] = int(spec[1:])
        elif spec:
            raise SystemExit(f"scene {arg!r}: {spec!r} is neither images_N nor rN")
    return name, kw

def _labelled(name: str, fn):
    def wrapped(*a, **k):
        with torch.profiler.record_function(name):
            return fn(*a, **k)
    return wrapped


def label_phases(trainer: Trainer, strategy) -> None:
    """Name the phases of a step in the trace (``phase/...`` rows of the host table)."""
    trainer.render = _labelled("phase/render", trainer.render)
    trainer.loss_fn = _labelled("phase/loss", trainer.loss_fn)
    strategy.after_backward = _labelled("phase/after_backward", strategy.after_backward)
    orig_backward = torch.Tensor.backward

    def backward(self, *a, **k):
        with torch.profiler.record_function("phase/backward"):
            return orig_backward(self, *a, **k)

    torch.Tensor.backward = backward


def table(events, key: str, n: int) -> str:
    rows = sorted(events, key=lambda e: getattr(e, key), reverse=True)[:n]
    lines = ["| operator | calls | host total ms | device total ms |", "|---|---|---|---|"]
    for e in rows:
        lines.append(f"| `{e.key[:70]}` | {e.count} | {e.cpu_time_total / 1e3:.1f} | "
                     f"{e.device_time_total / 1e3:.1f} |")
    return "\n".join(lines)


def time_statistics(trainer: Trainer, scene) -> list[str]:
    """Seconds of one ARGP recovery-score pass and one summed-blend-weight pass (the two
    statistics a method computes over all training views), on the model the run reached."""
    from gs.train.stats import recovery_score, weighted_blend_weights

    model, cams = trainer.ctx.model, list(scene.train_cameras)
    lines = [f"{model.num_gaussians:,} Gaussians, {len(cams)} training views", ""]
    for label, fn in (
        ("ARGP recovery score (torch tile lists)", lambda: recovery_score(model, cams, sh_degree=3)),
        ("summed blend weight (gsplat backward)",
         lambda: sum(weighted_blend_weights(model, c, None, backend="gsplat") for c in cams)),
    ):
        fn()  # warm-up
        torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        lines.append(f"- {label}: {time.perf_counter() - t:.3f} s")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=".data")
    ap.add_argument("--scene", default="fern:images_4")
    ap.add_argument("--iterations", type=int, default=30_000)
    ap.add_argument("--stop", type=int, default=16_000)
    ap.add_argument("--window", type=int, default=1000)
    ap.add_argument("--profile-at", type=int, default=10_000)
    ap.add_argument("--profile-steps", type=int, default=50)
    ap.add_argument("--out", required=True)
    ap.add_argument("--score", action="store_true",
                    help="after --stop, also time ARGP's recovery score and the summed blend weights "
                         "(HGSC significance) over every training view of the model reached")
    args = ap.parse_args()
    name, kw = parse_scene(args.scene)
    scene = load_scene(Path(args.data) / name, **kw)
    strategy = ProbedBaseline(args.window, args.profile_at, args.profile_steps, args.stop)
    trainer = Trainer(scene, strategy, TrainConfig(iterations=args.iterations, backend="gsplat", progress=False))
    label_phases(trainer, strategy)
    try:
        trainer.train()
    except _Stop:
        pass
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "windows.json").write_text(json.dumps(strategy.windows, indent=1))
    md = [f"# Training loop profile: {args.scene}, {torch.cuda.get_device_name()}", "",
          f"torch {torch.__version__}; baseline, 30k schedule, stopped at {args.stop}.", "",
          "| up to step | ms / iteration | #Gaussians |", "|---|---|---|"]
    md += [f"| {w['end_step']} | {w['ms_per_it']:.2f} | {w['num_gaussians']:,} |" for w in strategy.windows]
    if strategy.prof is not None and strategy.profile_wall is not None:
        ev = strategy.prof.key_averages()
        busy = sum(e.self_device_time_total for e in ev) / 1e3 / args.profile_steps
        md += ["", f"## Profiler window: steps {args.profile_at}..{args.profile_at + args.profile_steps}", "",
               f"- wall per step (under the profiler): {1000 * strategy.profile_wall:.2f} ms",
               f"- device busy per step (sum of kernel time): {busy:.2f} ms", "",
               f"- kernel launches per step: {sum(e.count for e in ev if e.key == 'cudaLaunchKernel') / args.profile_steps:.0f}",
               f"- host-device syncs per step: {sum(e.count for e in ev if e.key == 'cudaStreamSynchronize') / args.profile_steps:.1f}",
               "", "### Phases of a step (host)", "",
               table([e for e in ev if e.key.startswith("phase/") or e.key.startswith("Optimizer.")], "cpu_time_total", 10), "",
               "### Most host time", "", table(ev, "cpu_time_total", 40), "",
               "### Most device time (self)", "", table(ev, "self_device_time_total", 25)]
        strategy.prof.export_chrome_trace(str(out / "trace.json"))
    if args.score:
        md += ["", "## Per-Gaussian statistics over every training view", ""] + time_statistics(trainer, scene)
    (out / "profile.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
