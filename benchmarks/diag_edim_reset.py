"""Diagnostic: what EDIM's in-loop prune removes around the opacity resets.

    python benchmarks/diag_edim_reset.py --data .data --scene fern:images_4 --stop 3600

Trains EDIM (30k schedule) up to ``--stop`` and, at every refinement step near a reset,
prints the Gaussian count and how many fall under each prune criterion: alpha < 0.01,
alpha exactly at the reset cap (no opacity gradient since the reset), importance s < 0.01,
and alpha * s < 1/255 (culled by the rasterizer, hence no gradient at all).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.real_scenes import parse_scene  # noqa: E402
from gs.data import load_scene  # noqa: E402
from gs.methods.edim import EDIMStrategy  # noqa: E402
from gs.train.trainer import TrainConfig, Trainer  # noqa: E402


class _Stop(Exception):
    pass


class Probe(EDIMStrategy):
    def __init__(self, stop: int, **params) -> None:
        super().__init__(**params)
        self.stop = stop

    def after_step(self, ctx, step, out):
        near = any(abs(step - r) <= 400 for r in range(ctx.at(3000), ctx.at(15000), ctx.every(3000)))
        if self.is_refine_step(ctx, step) and (near or step % 1000 == 0):
            v = ctx.model.params["opacities"].detach()
            a, s = torch.sigmoid(v), self.importance(ctx.model).detach()
            cap = torch.logit(torch.tensor(self.cfg.reset_opacity_value)).item()
            print(f"[{step}] n {ctx.model.num_gaussians} alpha<0.01 {int((a < 0.01).sum())} "
                  f"at_cap {int((v == cap).sum())} s<0.01 {int((s < 0.01).sum())} s<0.39 {int((s < 0.39).sum())} "
                  f"culled {int((a * s < 1 / 255).sum())} young {int(self.young(ctx, step).sum())}", flush=True)
        super().after_step(ctx, step, out)
        if step >= self.stop:
            raise _Stop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=".data")
    ap.add_argument("--scene", default="fern:images_4")
    ap.add_argument("--stop", type=int, default=3600)
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    name, kw = parse_scene(args.scene)
    scene = load_scene(Path(args.data) / name, **kw)
    try:
        Trainer(scene, Probe(args.stop), TrainConfig(iterations=30_000, backend=args.backend, progress=False)).train()
    except _Stop:
        pass


if __name__ == "__main__":
    main()
