"""Benchmark: uncontended single-thread time of the HGSC decoder's CPU functions.

    PYTHONPATH=. python benchmarks/hgsc_decode_functions.py --num 300000

Encodes the synthetic model of benchmarks/hgsc_decode.py (default HGSC setting), then times
each function alone on the decoded data (min of ``--repeat``): the numbers of
benchmarks/hgsc_decode.py --stages overlap (threads, worker processes), these do not.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.hgsc_choices import synthetic_model  # noqa: E402
from gs.codecs.container import read_container  # noqa: E402
from gs.codecs.column_streams import decode_columns, split_streams  # noqa: E402
from gs.codecs import quantize, raht  # noqa: E402
from gs.methods import hgsc as H  # noqa: E402
from gs.methods.registry import get_method  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    params = get_method("hgsc").params_for("default")
    p = H.HGSCParams.from_dict(params)

    def timed(name, fn, *a):
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = fn(*a)
            best = min(best, time.perf_counter() - t0)
        print(f"| `{name}` | {best * 1000:.1f} |")
        return out

    with tempfile.TemporaryDirectory() as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            H.HGSCCodec(**params).encode(synthetic_model(args.num), tmp)
        data = {k: read_container(Path(tmp) / v) for k, v in H.FILES.items()}
    n, deg = data["header"][1]["num_points"], data["header"][1]["sh_degree"]
    print(f"{args.num:,} Gaussians, {n:,} voxels; min of {args.repeat}\n\n| function | ms |\n|---|---|")
    codes = timed("decode_octree", H.decode_octree, data["geometry"][0]["stream"], p.xyz_bits, n)
    q = H.morton_decode(codes, p.xyz_bits)
    labels = H.partition(q, p, "cpu")
    tree = H.raht_structure(codes[labels == 0])
    ctx = raht.raht_weight_class(tree, H.ANCHOR_WEIGHT_CLASSES)
    a = data["anchors"][0]
    d = len(a["min"])
    cat = decode_columns([(split_streams(a["classes"], a["class_sizes"]), len(ctx), [raht.CAT_ALPHABET] * d, ctx,
                           H.ANCHOR_WEIGHT_CLASSES)], 1)[0]
    highs = timed("coefficients_from_classes", H.coefficients_from_classes, cat.T, a["mantissa"], "anchors")
    a_q = timed("raht_inverse", H.raht_inverse, highs, a["dc"].astype(np.int64), tree)
    rec = H.dequantize_columns(a_q, a["min"], a["max"], 2 ** p.anchor_bits).astype(np.float32)
    rng = np.random.default_rng(0)
    attrs = rec[rng.integers(0, len(rec), n)]  # n attribute rows
    timed("ModelRows.put (model_from_attributes, all rows)", H.model_from_attributes, q.astype(np.float32), attrs, deg)
    groups = H.lod_groups(deg, p)
    lq = np.ascontiguousarray(rng.integers(0, 16, size=(d, n)).astype(np.uint8)).T
    timed("group_rows (group_reconstruct, all rows)", quantize.group_reconstruct, attrs, lq,
          np.full(len(groups), -1, np.float32), np.ones(len(groups), np.float32), groups)


if __name__ == "__main__":
    main()
