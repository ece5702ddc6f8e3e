"""Benchmark: the vector-quantization part of one NSVQ-GS training step, forward + backward.

    python benchmarks/nsvq_step.py --num 438000 --out DIR

Why: on fern (438k Gaussians) the NSVQ phase ran at ~47 ms an iteration with the k256
codebooks, against ~5 ms for the same model in the opacity-regularised phase just before it.
This times, on random float32 data shaped like one step, for every codebook configuration and
attribute: the nearest-code search, and the noise substitution forward + backward with three
ways of reading the selected codes - ``index`` (``cb[k]``, whose backward is an accumulating
``index_put_``), ``index_select`` (backward ``index_add_``) and ``embedding``
(``F.embedding``, backward a sorted segment sum) - and checks that the codebook gradients agree.
CUDA-event milliseconds, median of ``--repeat`` after a warm-up. Writes
``nsvq_step.{json,md}``. No figure here is asserted by a test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks.nearest_bench import time_ms  # noqa: E402
from gs.methods.nsvqgs import noise_substitute  # noqa: E402
from gs.train.nearest import nearest_code  # noqa: E402

CONFIGS = {  # (K, D) per attribute: scale, rotation, dc, sh (methods/nsvqgs.md §2)
    "k256": {"scales": (256, 3), "quats": (256, 4), "sh0": (64, 3), "shN": (64, 45)},
    "k1k": {"scales": (1024, 3), "quats": (1024, 4), "sh0": (256, 3), "shN": (256, 45)},
    "k4k": {"scales": (4096, 3), "quats": (4096, 4), "sh0": (1024, 3), "shN": (1024, 45)},
    "k16k": {"scales": (16384, 3), "quats": (16384, 4), "sh0": (4096, 3), "shN": (4096, 45)},
}
GATHERS = {
    "index": lambda cb, k: cb[k],
    "index_select": lambda cb, k: cb.index_select(0, k),
    "embedding": lambda cb, k: F.embedding(k, cb),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num", type=int, default=438_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    dev = torch.device(args.device)
    gen = torch.Generator(device=dev).manual_seed(0)
    rows = []
    for cfg in args.configs:
        for key, (k, d) in CONFIGS[cfg].items():
            x = torch.randn(args.num, d, device=dev, generator=gen).requires_grad_()
            cb = torch.randn(k, d, device=dev, generator=gen).requires_grad_()
            g = torch.randn(args.num, d, device=dev, generator=gen)
            idx = nearest_code(x.detach(), cb.detach())
            row = {"config": cfg, "attr": key, "K": k, "D": d, "codes_used": int(torch.unique(idx).numel()),
                   "nearest_ms": time_ms(lambda: nearest_code(x.detach(), cb.detach()), args.repeat, dev)}
            grads = {}
            for name, gather in GATHERS.items():
                def step() -> None:
                    x.grad = cb.grad = None
                    y = noise_substitute(x, gather(cb, idx), generator=torch.Generator(device=dev).manual_seed(1))
                    y.backward(g)

                row[f"{name}_fwd_bwd_ms"] = time_ms(step, args.repeat, dev)
                step()
                grads[name] = cb.grad.detach().clone()
            ref = grads["index"]
            scale = float(ref.abs().max()) or 1.0
            row["max_rel_grad_diff"] = max(float((v - ref).abs().max()) / scale for v in grads.values())
            rows.append(row)
            print(json.dumps(row), flush=True)
    env = {"torch": torch.__version__, "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "num": args.num}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "nsvq_step.json").write_text(json.dumps({"env": env, "rows": rows}, indent=1))
    cols = ["config", "attr", "K", "D", "codes_used", "nearest_ms"] + [f"{n}_fwd_bwd_ms" for n in GATHERS] + ["max_rel_grad_diff"]
    lines = [f"# NSVQ-GS step, VQ part only ({env['device']}, torch {env['torch']}, {args.num} rows)", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
    sums = {cfg: {n: sum(r[f"{n}_fwd_bwd_ms"] + r["nearest_ms"] for r in rows if r["config"] == cfg) for n in GATHERS}
            for cfg in args.configs}
    lines += ["", "Per step (nearest + forward/backward, four attributes), ms:", ""]
    lines += [f"- {cfg}: " + ", ".join(f"{n} {v:.2f}" for n, v in s.items()) for cfg, s in sums.items()]
    (out / "nsvq_step.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
