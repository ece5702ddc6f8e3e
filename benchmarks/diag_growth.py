"""Diagnostic: print the Gaussian count, GPU memory and refine statistics of a baseline run."""
import sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch
from gs.data import load_scene
from gs.methods.baseline import BaselineStrategy
from gs.train.trainer import TrainConfig, Trainer

class Diag(BaselineStrategy):
    def after_step(self, ctx, step, out):
        super().after_step(ctx, step, out)
        if step % 1000 == 0:
            mem = torch.cuda.memory_allocated() / 2**30 if torch.cuda.is_available() else 0
            print(f"[{step}] n {ctx.model.num_gaussians} mem {mem:.2f}G isect? radii_mean {out.radii.float().mean():.1f} "
                  f"radii_max {out.radii.max()} t {time.time()-T0:.0f}s", flush=True)
            if mem > 30:
                import gc
                ts = [o for o in gc.get_objects() if torch.is_tensor(o) and o.is_cuda]
                ts.sort(key=lambda t: -t.numel())
                for t in ts[:15]:
                    print("  tensor", tuple(t.shape), t.dtype, t.numel() * t.element_size() / 2**20, "MiB")
                raise SystemExit("memory blow-up")
    def refine(self, ctx, step):
        g = self.average_grads()
        n0 = ctx.model.num_gaussians
        hi = int((g >= self.cfg.grad_threshold).sum())
        super().refine(ctx, step)
        if step % 2000 == 0 or ctx.model.num_gaussians > 2_000_000:
            mem = torch.cuda.memory_allocated() / 2**30 if torch.cuda.is_available() else 0
            sc = ctx.model.scales.max(1).values
            print(f"step {step} n {n0}->{ctx.model.num_gaussians} above_thr {hi} gmed {g.median():.2e} "
                  f"mem {mem:.2f}G maxscale {sc.max():.3f} E {ctx.scene_extent:.2f} t {time.time()-T0:.0f}s", flush=True)
        if ctx.model.num_gaussians > 3_000_000:
            raise SystemExit("exploded")

T0 = time.time()
name, kw = sys.argv[1], eval(sys.argv[2])
sc = load_scene(Path(".data") / name, **kw)
it = int(sys.argv[3]) if len(sys.argv) > 3 else 30000
t = Trainer(sc, Diag(), TrainConfig(iterations=it, progress=False, backend=sys.argv[4] if len(sys.argv) > 4 else "auto"))
r = t.train()
print("final", r.model.num_gaussians, r.stats["train_seconds"], r.stats["peak_memory_bytes"] / 2**30)
