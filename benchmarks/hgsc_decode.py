"""Benchmark: HGSC encode / decode time at scale (the paper reports about 2 s to decode 1M).

    python benchmarks/hgsc_decode.py --num 1000000 --device cuda --out DIR

A synthetic trained-like model of ``--num`` Gaussians (benchmarks/hgsc_choices.py) is encoded
with the default HGSC setting and decoded ``--repeat`` times on ``--device`` (the first decode
is a warm-up when ``--repeat`` > 1; the median of the others is reported). Without a scene
there is no significance pruning, so every Gaussian is coded: the decoder rebuilds all of them.
Writes ``hgsc_decode.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.hgsc_choices import synthetic_model  # noqa: E402
from gs.methods import hgsc as H  # noqa: E402
from gs.methods.registry import get_method  # noqa: E402


def _sync(dev: str) -> None:
    if dev.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num", type=int, default=1_000_000)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--variant", default="default")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    params = get_method("hgsc").params_for(args.variant)
    model = synthetic_model(args.num).to(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "bitstream"
        codec = H.HGSCCodec(**params)
        _sync(args.device)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats = codec.encode(model, d)
        _sync(args.device)
        t_enc = time.perf_counter() - t0
        times, dec = [], None
        for _ in range(max(1, args.repeat)):
            _sync(args.device)
            t0 = time.perf_counter()
            dec = H.HGSCCodec(**params).decode(d, device=args.device)
            _sync(args.device)
            times.append(time.perf_counter() - t0)
        exact = all(torch.equal(dec.params[k].cpu(), codec.reconstruction.params[k].cpu()) for k in dec.params)
    timed = times[1:] if len(times) > 1 else times
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    md = [f"# HGSC decode at scale ({name})", "",
          f"`python benchmarks/hgsc_decode.py --num {args.num} --device {args.device} --variant {args.variant}`", "",
          "| input #G | decoded #G | size MB | PLY MB | encode s | decode s (median) | decode s (all) | bit-exact |",
          "|---|---|---|---|---|---|---|---|",
          f"| {args.num:,} | {dec.num_gaussians:,} | {stats['size_bytes'] / 1e6:.2f} | {model.ply_num_bytes() / 1e6:.1f} | "
          f"{t_enc:.2f} | {statistics.median(timed):.2f} | {', '.join(f'{t:.2f}' for t in times)} | {exact} |"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hgsc_decode.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
