"""Benchmark: nearest-code search of NSVQ-GS, per codebook, for each implementation.

    python benchmarks/nearest_bench.py --num 435000 --out DIR

Times ``gs.train.nearest.nearest_code`` on random float32 data shaped like one NSVQ-GS step
(``--num`` visible Gaussians against the scale, rotation, DC and SH-rest codebooks of the
k4k and k16k configurations) with the Triton ``dot`` and ``fma`` kernels and the torch
``addmm`` path: CUDA-event milliseconds, median of ``--repeat`` after a warm-up, and the share
of rows where each kernel agrees with the torch path. Writes ``nearest_bench.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from gs.train.nearest import nearest_code  # noqa: E402

CONFIGS = {  # (K, D) per attribute: scale, rotation, dc, sh (methods/nsvqgs.md §2)
    "k4k": {"scale": (4096, 3), "rotation": (4096, 4), "dc": (1024, 3), "sh": (1024, 45)},
    "k16k": {"scale": (16384, 3), "rotation": (16384, 4), "dc": (4096, 3), "sh": (4096, 45)},
}


def time_ms(fn, repeat: int, device: torch.device | None = None) -> float:
    """Median milliseconds of ``repeat`` calls after one warm-up: CUDA events on a GPU, wall
    clock on the CPU."""
    device = device or torch.device("cuda")
    fn()
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b))
        else:
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num", type=int, default=435_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("nearest_bench.py needs CUDA")
    g = torch.Generator(device="cuda").manual_seed(0)
    rows = []
    for cfg, attrs in CONFIGS.items():
        for attr, (k, d) in attrs.items():
            x = torch.randn(args.num, d, device="cuda", generator=g)
            c = torch.randn(k, d, device="cuda", generator=g)
            ref = nearest_code(x, c, fused=False)
            row = {"config": cfg, "attr": attr, "K": k, "D": d, "N": args.num,
                   "torch_ms": time_ms(lambda: nearest_code(x, c, fused=False), args.repeat)}
            for kern in ("dot", "fma"):
                row[f"{kern}_ms"] = time_ms(lambda: nearest_code(x, c, fused=True, kernel=kern), args.repeat)
                row[f"{kern}_agree"] = float((nearest_code(x, c, fused=True, kernel=kern) == ref).float().mean())
            rows.append(row)
            print(row, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "nearest_bench.json").write_text(json.dumps({"device": torch.cuda.get_device_name(),
                                                        "torch": torch.__version__, "rows": rows}, indent=1))
    md = [f"# Nearest-code search, {args.num:,} rows, {torch.cuda.get_device_name()}", "",
          "| config | attr | K | D | torch ms | dot ms | fma ms | dot agree | fma agree |", "|---|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['config']} | {r['attr']} | {r['K']} | {r['D']} | {r['torch_ms']:.2f} | {r['dot_ms']:.2f} | "
           f"{r['fma_ms']:.2f} | {r['dot_agree']:.5f} | {r['fma_agree']:.5f} |" for r in rows]
    for cfg in CONFIGS:
        sel = [r for r in rows if r["config"] == cfg]
        md.append(f"\n{cfg} per step: torch {sum(r['torch_ms'] for r in sel):.1f} ms, dot "
                  f"{sum(r['dot_ms'] for r in sel):.1f} ms, fma {sum(r['fma_ms'] for r in sel):.1f} ms")
    (out / "nearest_bench.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
