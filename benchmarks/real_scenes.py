"""Benchmark: every method on real scenes, against our own baseline from the same run.

    python benchmarks/real_scenes.py --data .data --out benchmarks/out/gpu \
        --scenes fern:images_4 beer_can:r2 --iterations 30000 --methods 3dgs gns argp edim nsvqgs hgsc

Per scene: trains the 3DGS baseline (PLY snapshot at 7k, checkpoint at 15k for NSVQ-GS),
evaluates it at 7k and at the end, then each requested method and variant (GNS budgets are
fractions of this baseline's final count; NSVQ-GS starts from the baseline's 15k checkpoint;
codecs compress the baseline). Writes ``results.json`` (every run) and ``results.md`` (a table)
into ``--out``; nothing is timed inside tests, the figures come from here.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from gs.codecs.run import run_codec  # noqa: E402
from gs.data import load_scene  # noqa: E402
from gs.eval.evaluate import evaluate_model  # noqa: E402
from gs.methods.registry import get_method  # noqa: E402
from gs.model import GaussianModel, file_size_bytes  # noqa: E402
from gs.train import ops  # noqa: E402
from gs.methods.registry import train_method  # noqa: E402
from gs.train.trainer import TrainConfig, write_json  # noqa: E402


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


def row(scene: str, method: str, variant: str, metrics: dict, extra: dict) -> dict:
    mean = metrics.get("metrics", {})
    return {
        "scene": scene, "method": method, "variant": variant,
        "psnr": mean.get("psnr"), "ssim": mean.get("ssim"), "lpips": mean.get("lpips"),
        "num_gaussians": metrics.get("num_gaussians"), "size_bytes": metrics.get("size_bytes"),
        "fps": metrics.get("fps"), **extra,
    }


def run_methods(args, name, scene, run_root, base_dir, base_count, half, wanted, rows, errors, save) -> None:
    """Every requested method and variant on one scene, against the baseline in ``base_dir``."""
    for method in args.methods:
        if method == "3dgs":
            continue
        spec = get_method(method)
        for variant in spec.variants:
            if wanted is not None and (method, variant) not in wanted:
                continue
            try:
                params = spec.params_for(variant, None, name, {})
                vdir = run_root / method / variant
                t0 = time.perf_counter()
                derived = derived_decomp(method, params, run_root)
                if derived is not None:
                    # EDIM's Decomp(tau) only cuts the trained model after its last iteration
                    # (EDIMStrategy.finalize): derive it from the same variant's uncut run of
                    # this scene instead of training the same schedule again.
                    model_ply, size, extra = derived(vdir)
                elif spec.kind == "train":
                    if "budget_fraction" in params:
                        params["baseline_count"] = base_count
                    init = None
                    if spec.init_from_baseline_at:
                        init = str(base_dir / "checkpoints" / f"ckpt_{half}.pt")
                    mcfg = TrainConfig(iterations=args.iterations, seed=args.seed, backend=args.backend,
                                       progress=args.progress, init_checkpoint=init)
                    res = train_method(scene, method, params, vdir, mcfg)
                    extra = {"train_seconds": res.stats["train_seconds"],
                             "peak_memory_bytes": res.stats.get("peak_memory_bytes"),
                             "starts_from": "3dgs@15k" if init else None}
                    model_ply = vdir / "point_cloud.ply"
                    size = file_size_bytes(model_ply)
                    if spec.codec:
                        cs = run_codec(method, params, model_ply, vdir / "codec", scene=scene, backend=args.backend)
                        model_ply = vdir / "codec" / "point_cloud.ply"
                        size = cs["size_bytes"]
                        extra.update(encode_seconds=cs["encode_seconds"], decode_seconds=cs["decode_seconds"],
                                     components=cs.get("components"))
                else:
                    for over in ["3dgs"] + list(args.codec_over or []):
                        src = base_dir if over == "3dgs" else run_root / over.replace(":", "/")
                        cdir = vdir if over == "3dgs" else run_root / f"{method}@{over.replace(':', '_')}" / variant
                        t1 = time.perf_counter()
                        cs = run_codec(method, params, src / "point_cloud.ply", cdir, scene=scene, backend=args.backend)
                        extra = {"encode_seconds": cs["encode_seconds"], "decode_seconds": cs["decode_seconds"],
                                 "components": cs.get("components"), "over": over,
                                 "input_num_gaussians": cs.get("input_num_gaussians")}
                        if method == "hgsc":  # the upstream protocol's second number
                            from gs.methods.hgsc import render_fidelity

                            dev = "cuda" if torch.cuda.is_available() else "cpu"
                            fid = render_fidelity(GaussianModel.load_ply(src / "point_cloud.ply", device=dev),
                                                  GaussianModel.load_ply(cdir / "point_cloud.ply", device=dev),
                                                  scene, backend=args.backend)
                            extra["fidelity_psnr"] = fid["psnr"]
                        evaluate_row(args, rows, scene, name, method if over == "3dgs" else f"{method}@{over}",
                                     variant, cdir / "point_cloud.ply", cs["size_bytes"], extra, cdir, t1)
                    save()
                    continue
                evaluate_row(args, rows, scene, name, method, variant, model_ply, size, extra, vdir, t0)
            except Exception as exc:  # keep benchmarking the other methods; the error is recorded
                errors.append(f"{name} {method} {variant}: {exc!r}")
                traceback.print_exc()
            save()


def evaluate_row(args, rows, scene, name, method, variant, model_ply, size, extra, vdir, t0) -> None:
    m = GaussianModel.load_ply(model_ply, device="cuda" if torch.cuda.is_available() else "cpu")
    met = evaluate_model(m, scene, vdir / "eval", method=method, variant=variant, dataset="bench",
                         scene_name=name, backend=args.backend, size_bytes=size, progress=False)
    rows.append(row(name, method, variant, met, extra | {"wall_seconds": time.perf_counter() - t0, "note": args.note}))
    print(rows[-1], flush=True)


def derived_decomp(method: str, params: dict, run_root: Path):
    """For an ``edim`` Decomp variant whose undecomposed run (the variant with the same
    parameters but no final cut, e.g. tag_gradprune for decomp_0.1) exists under ``run_root``:
    a function writing the cut model into a variant folder, else None."""
    tau = params.get("final_prune_threshold")
    if method != "edim" or tau is None:
        return None
    spec = get_method(method)
    uncut = {k: v for k, v in params.items() if k != "final_prune_threshold"}
    src_variant = next((v for v in spec.variants if spec.params_for(v) == uncut), None)
    src = run_root / method / str(src_variant)
    if src_variant is None or not (src / "importance.npy").exists():
        return None

    def make(vdir: Path):
        import numpy as np

        model = GaussianModel.load_ply(src / "point_cloud.ply")
        importance = torch.from_numpy(np.load(src / "importance.npy"))
        if importance.shape[0] != model.num_gaussians:
            raise RuntimeError(f"{src}: importance.npy has {importance.shape[0]} rows for {model.num_gaussians} Gaussians")
        ops.keep_only(model, None, importance >= tau)  # what EDIMStrategy.finalize cuts
        vdir.mkdir(parents=True, exist_ok=True)
        model.save_ply(vdir / "point_cloud.ply")
        stats = json.loads((src / "train_stats.json").read_text())
        return vdir / "point_cloud.ply", file_size_bytes(vdir / "point_cloud.ply"), {
            "train_seconds": stats["train_seconds"], "peak_memory_bytes": stats.get("peak_memory_bytes"),
            "derived_from": f"edim/{src_variant}", "num_before_decomp": int(importance.shape[0])}

    return make


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=".data")
    ap.add_argument("--out", default="benchmarks/out/gpu")
    ap.add_argument("--scenes", nargs="+", default=["fern:images_4", "beer_can:r2"])
    ap.add_argument("--iterations", type=int, default=30_000)
    ap.add_argument("--methods", nargs="+", default=["3dgs"])
    ap.add_argument("--variants", nargs="*", default=None, help="method:variant pairs (default: every variant)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--note", default=None, help="a remark stored in every row (e.g. 'ran beside another job')")
    ap.add_argument("--codec-over", nargs="*", default=None,
                    help="method:variant runs of this scene that each codec also compresses (besides 3dgs)")
    ap.add_argument("--baseline-count", type=int, default=None,
                    help="skip the baseline and take its final #Gaussians from an earlier run of the same code")
    args = ap.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    errors: list[str] = []
    snap = int(round(7000 * args.iterations / 30000))
    half = int(round(15000 * args.iterations / 30000))
    wanted = None
    if args.variants:
        wanted = {tuple(v.split(":", 1)) for v in args.variants}

    def save() -> None:
        env = {"python": platform.python_version(), "torch": torch.__version__,
               "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
        write_json(out / "results.json", {"env": env, "iterations": args.iterations, "rows": rows, "errors": errors})
        cols = ["scene", "method", "variant", "psnr", "ssim", "lpips", "num_gaussians", "size_mb", "train_seconds",
                "peak_gpu_mb", "encode_seconds", "decode_seconds", "fidelity_psnr", "fps", "note"]
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in rows:
            r = dict(r, size_mb=None if r.get("size_bytes") is None else r["size_bytes"] / 1e6,
                     peak_gpu_mb=None if r.get("peak_memory_bytes") is None else r["peak_memory_bytes"] / 2**20)
            lines.append("| " + " | ".join(
                f"{r.get(c):.4g}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in cols) + " |")
        (out / "results.md").write_text("\n".join(lines) + "\n" + "\n".join(f"ERROR {e}" for e in errors) + "\n")

    for scene_arg in args.scenes:
        name, kw = parse_scene(scene_arg)
        scene = load_scene(Path(args.data) / name, **kw)
        print(scene.summary(), flush=True)
        run_root = Path("/tmp/gsbench_runs") / name
        base_dir = run_root / "3dgs"
        if args.baseline_count is not None:
            base_count = args.baseline_count
            run_methods(args, name, scene, run_root, base_dir, base_count, half, wanted, rows, errors, save)
            continue
        cfg = TrainConfig(iterations=args.iterations, seed=args.seed, backend=args.backend,
                          progress=args.progress, save_iterations=(snap,), checkpoint_every=half, keep_checkpoints=3)
        base = train_method(scene, "3dgs", {}, base_dir, cfg)
        bs = base.stats
        for it, ply in ((snap, base_dir / f"point_cloud_{snap}.ply"), (args.iterations, base_dir / "point_cloud.ply")):
            m = GaussianModel.load_ply(ply, device="cuda" if torch.cuda.is_available() else "cpu")
            met = evaluate_model(m, scene, run_root / f"eval_3dgs_{it}", method="3dgs", dataset="bench",
                                 scene_name=name, backend=args.backend, size_bytes=file_size_bytes(ply),
                                 progress=False)
            rows.append(row(name, "3dgs", f"{it}it", met, {
                "train_seconds": bs["train_seconds"] if it == args.iterations else None,
                "peak_memory_bytes": bs.get("peak_memory_bytes"), "note": args.note}))
        print(rows[-1], flush=True)
        save()
        base_count = bs["num_gaussians"]
        run_methods(args, name, scene, run_root, base_dir, base_count, half, wanted, rows, errors, save)
    save()
    print((out / "results.md").read_text())


if __name__ == "__main__":
    main()
