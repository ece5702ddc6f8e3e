"""Benchmark: HGSC encode / decode time at scale (the paper reports about 2 s to decode 1M).

    python benchmarks/hgsc_decode.py --num 1000000 --device cuda --out DIR

A synthetic trained-like model of ``--num`` Gaussians (benchmarks/hgsc_choices.py) is encoded
with the default HGSC setting and decoded ``--repeat`` times on ``--device`` (the first decode
is a warm-up when ``--repeat`` > 1; the median of the others is reported). Without a scene
there is no significance pruning, so every Gaussian is coded: the decoder rebuilds all of them.
Writes ``hgsc_decode.md`` into ``--out``. ``--stages`` adds the time spent in each decoder stage
(the wall time covered by the calls of the stage in the last decode: calls running in several
threads at once count once; the nearest-neighbour searches run in threads concurrently with the
range decoding and the anchors, and the row blocks of ``group_rows`` and ``ModelRows.put`` run
concurrently with each other, so the stages may sum to more than the total; "rest" is the time
when none of the other stages ran).
"""

from __future__ import annotations

import collections
import functools
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.hgsc_choices import synthetic_model  # noqa: E402
from benchmarks.scale import scale_parser, sync  # noqa: E402
from gs.methods import hgsc as H  # noqa: E402
from gs.methods.registry import get_method  # noqa: E402


# decoder stages timed by --stages: functions of gs.methods.hgsc (wrapped while decoding)
STAGES = [("read_container_set", "read + check the containers"), ("decode_octree", "geometry (octree range decoding)"),
          ("partition", "KD-tree + FPS partition"),
          ("decode_coefficients", "anchor RAHT coefficients, format 1 (range decoding, one stream)"),
          ("coefficients_from_classes", "anchor RAHT coefficients (classes + mantissas)"),
          ("raht_inverse", "inverse RAHT"),
          ("submit_columns", "anchor classes + LoD residuals (range decoding, a stream per column, worker processes)"),
          ("_column_result", "waiting for the anchor classes + LoD residuals (range decoding in worker processes, "
                             "in the background)"),
          ("nearest_reference", "nearest reference (threads)"), ("group_rows", "LoD dequantize + predict (threads)"),
          ("ModelRows.put", "YUV -> RGB + output arrays (threads)")]


def _covered(intervals: list[tuple[float, float]]) -> float:
    """Wall time covered by the union of the intervals (calls running in several threads
    at once count once)."""
    total, end = 0.0, -float("inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def timed_stages(dev: str) -> tuple[dict[str, list], list]:
    """Wrap the stage functions; returns the (mutable) table of call intervals per stage and
    the undo list."""
    times: dict[str, list] = collections.defaultdict(list)
    undo = []
    for name, _ in STAGES:
        owner, attr = (H, name) if "." not in name else (getattr(H, name.split(".")[0]), name.split(".")[1])
        fn = getattr(owner, attr, None)
        if fn is None:
            continue

        @functools.wraps(fn)
        def wrapper(*a, _fn=fn, _name=name, **k):
            t0 = time.perf_counter()
            out = _fn(*a, **k)
            sync(dev)
            times[_name].append((t0, time.perf_counter()))
            return out

        setattr(owner, attr, wrapper)
        undo.append((owner, attr, fn))
    return times, undo


def main() -> None:
    ap = scale_parser(__doc__, "default")
    ap.add_argument("--stages", action="store_true", help="also time the decoder stages (last decode)")
    args = ap.parse_args()
    params = get_method("hgsc").params_for(args.variant)
    model = synthetic_model(args.num).to(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "bitstream"
        codec = H.HGSCCodec(**params)
        sync(args.device)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats = codec.encode(model, d)
        sync(args.device)
        t_enc = time.perf_counter() - t0
        times, dec = [], None
        stage_calls: dict[str, list] = {}
        for i in range(max(1, args.repeat)):
            last = i == max(1, args.repeat) - 1
            if args.stages and last:
                stage_calls, undo = timed_stages(args.device)
            sync(args.device)
            t0 = time.perf_counter()
            dec = H.HGSCCodec(**params).decode(d, device=args.device)
            sync(args.device)
            times.append(time.perf_counter() - t0)
            if args.stages and last:
                for owner, attr, fn in undo:
                    setattr(owner, attr, fn)
        exact = all(torch.equal(dec.params[k].cpu(), codec.reconstruction.params[k].cpu()) for k in dec.params)
    timed = times[1:] if len(times) > 1 else times
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    md = [f"# HGSC decode at scale ({name})", "",
          f"`python benchmarks/hgsc_decode.py --num {args.num} --device {args.device} --variant {args.variant} "
          f"--repeat {args.repeat}{' --stages' if args.stages else ''}`", "",
          "| input #G | decoded #G | size MB | PLY MB | encode s | decode s (median) | decode s (all) | bit-exact |",
          "|---|---|---|---|---|---|---|---|",
          f"| {args.num:,} | {dec.num_gaussians:,} | {stats['size_bytes'] / 1e6:.2f} | {model.ply_num_bytes() / 1e6:.1f} | "
          f"{t_enc:.2f} | {statistics.median(timed):.2f} | {', '.join(f'{t:.2f}' for t in times)} | {exact} |"]
    if args.stages:
        stage_times = {k: _covered(v) for k, v in stage_calls.items()}
        md += ["", f"Decoder stages (last decode, {times[-1]:.2f} s in all):", "", "| stage | s |", "|---|---|"]
        md += [f"| {label} (`{name}`) | {stage_times[name]:.3f} |" for name, label in STAGES if name in stage_times]
        staged = _covered([iv for k, v in stage_calls.items() if k != "nearest_reference" for iv in v])
        md.append(f"| rest: no stage but the nearest-reference threads running (bookkeeping, allocation, "
                  f"waiting for them) | {times[-1] - staged:.3f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hgsc_decode.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
