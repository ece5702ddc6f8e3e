"""Command line for one scene, without Snakemake.

    python -m gs generate data/demo                       # procedural test scene (COLMAP layout)
    python -m gs train data/demo runs/demo/3dgs --iterations 3000
    python -m gs train path/to/fern runs/fern/gns --method gns --variant 15pct --images images_4 \
        --set baseline_count=474736
    python -m gs evaluate runs/demo/3dgs/point_cloud.ply data/demo runs/demo/3dgs
    python -m gs compress runs/demo/3dgs/point_cloud.ply runs/demo/hgsc --codec hgsc --scene data/demo
    python -m gs render runs/demo/3dgs/point_cloud.ply data/demo out/renders
    python -m gs methods                                  # registered methods and their variants
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _parse_sets(items: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs; values parsed as YAML 1.2 scalars (``1e-4`` is a number,
    ``true`` a boolean, ``[1, 2]`` a list); the method checks them before anything runs."""
    from gs.methods.registry import parse_scalar

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects key=value, got '{item}'")
        out[key.strip()] = parse_scalar(value)
    return out


def _add_scene_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", default=None, help="image folder inside the scene, e.g. images_4 (default: images)")
    p.add_argument("--resolution", "-r", type=int, default=-1,
                   help="-1: longest side capped at --max-side (default); 1/2/4/8 divide the resolution")
    p.add_argument("--max-side", type=int, default=1600)
    p.add_argument("--test-every", type=int, default=8, help="every N-th image (sorted by name) is a test view")
    p.add_argument("--white-background", action="store_true", default=None)


def _scene_protocol(args: argparse.Namespace) -> dict[str, Any]:
    return {"images": args.images, "resolution": args.resolution, "max_side": args.max_side,
            "test_every": args.test_every, "white_background": args.white_background}


def _load_scene(args: argparse.Namespace, path: str):
    from gs.data import load_scene

    return load_scene(path, **_scene_protocol(args))


def cmd_generate(args: argparse.Namespace) -> None:
    from gs.data import generate_scene

    path = generate_scene(args.out, seed=args.seed, num_views=args.views, width=args.width, height=args.height)
    print(f"wrote synthetic scene to {path}")


def _int_at_least(minimum: int):
    """An argparse type: a whole number >= ``minimum`` (one clear line otherwise)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def cmd_train(args: argparse.Namespace) -> None:
    from gs.eval.provenance import sha256_files
    from gs.methods.registry import get_method, train_method
    from gs.train.checkpoint import SETTINGS_KEYS, checkpoint_fingerprint, claim_checkpoints
    from gs.train.trainer import TrainConfig

    spec = get_method(args.method)
    params = spec.params_for(args.variant or spec.default_variant, args.dataset, Path(args.scene).name,
                             _parse_sets(args.set))
    scene = _load_scene(args, args.scene)
    print(scene.summary())
    cfg = TrainConfig(iterations=args.iterations, seed=args.seed, backend=args.backend, device=args.device,
                      checkpoint_every=args.checkpoint_every, init_checkpoint=args.init_checkpoint,
                      save_iterations=tuple(args.save_at or ()), progress=not args.quiet)
    # the same fingerprint as the pipeline's; the scene is named by its folder, protocol and inputs
    init = {"checkpoint": str(Path(args.init_checkpoint).resolve())} if args.init_checkpoint else None
    scene_id = {"path": str(Path(args.scene).resolve()), "protocol": _scene_protocol(args),
                "input_sha256": sha256_files(scene.input_files)}
    fp = checkpoint_fingerprint(args.method, params, {k: getattr(cfg, k) for k in SETTINGS_KEYS}, scene_id, init)
    if claim_checkpoints(args.out, fp, restart=args.restart):
        print(f"resuming from the checkpoints in {Path(args.out) / 'checkpoints'}")
    result = train_method(scene, args.method, params, args.out, cfg)
    s = result.stats
    print(f"done: {s['num_gaussians']} Gaussians, {s['train_seconds']:.1f} s on {s['device']} ({s['backend']}); "
          f"model: {Path(args.out) / 'point_cloud.ply'}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from gs.eval.evaluate import evaluate_model
    from gs.model import GaussianModel, file_size_bytes

    scene = _load_scene(args, args.scene)
    model = GaussianModel.load_ply(args.model)
    size = file_size_bytes(args.size_of) if args.size_of else file_size_bytes(args.model)
    extra: dict[str, Any] = {}
    for name in ("train_stats.json", "codec_stats.json"):
        p = Path(args.model).parent / name
        if p.is_file():
            extra.update({k: v for k, v in json.loads(p.read_text()).items()
                          if k.endswith("_seconds") or k in ("peak_memory_bytes",)})
    evaluate_model(model, scene, Path(args.out), backend=args.backend, method=args.method,
                   variant=args.variant, dataset=args.dataset, scene_name=Path(args.scene).name,
                   size_bytes=size, extra=extra, seed=args.seed)
    # print what was written (read back), so the console and metrics.json never disagree
    path = Path(args.out) / "metrics.json"
    written = json.loads(path.read_text())
    shown = {**written["metrics"], **{k: written.get(k) for k in ("num_gaussians", "size_bytes", "fps")}}
    print(f"wrote {path}")
    print(json.dumps(shown))


def cmd_render(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from gs.model import GaussianModel
    from gs.render import render

    scene = _load_scene(args, args.scene)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = GaussianModel.load_ply(args.model, device=dev)
    cams = scene.test_cameras if args.split == "test" else scene.train_cameras
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        for cam in cams:
            img = render(model, cam.to(dev), backend=args.backend, background=scene.background.to(dev)).image
            arr = (img.clamp(0, 1) * 255).round().byte().cpu().numpy()
            Image.fromarray(np.ascontiguousarray(arr)).save(out / f"{Path(cam.name).stem}.png")
    print(f"rendered {len(cams)} {args.split} views to {out}")


def cmd_compress(args: argparse.Namespace) -> None:
    from gs.codecs.run import run_codec
    from gs.methods.registry import get_method

    spec = get_method(args.codec)
    params = spec.params_for(args.variant or spec.default_variant, args.dataset, None, _parse_sets(args.set))
    scene = _load_scene(args, args.scene) if args.scene else None
    stats = run_codec(args.codec, params, args.model, args.out, scene=scene, backend=args.backend, seed=args.seed)
    print(f"{stats['size_bytes']} bytes, {stats['num_gaussians']} Gaussians decoded, "
          f"encode {stats['encode_seconds']:.2f} s, decode {stats['decode_seconds']:.2f} s")


def cmd_methods(args: argparse.Namespace) -> None:
    from gs.methods.registry import METHODS

    sources = METHODS.sources()
    for mid, spec in METHODS.items():
        print(f"{mid:8s} {spec.kind:6s} {spec.title}")
        print(f"         variants: {', '.join(spec.variants)} (default {spec.default_variant})")
        print(f"         consumes: {spec.consumes}")
        if spec.paper_results_file:
            print(f"         paper numbers: {spec.paper_results_file}")
        if not sources[mid].startswith("gs.methods."):
            print(f"         from: {sources[mid]}")
        if args.params:
            for name, param in spec.params.items():
                print(f"         param {name}: {param.describe()}")
        if args.deviations:
            fid = spec.fidelity
            if fid is None:
                print("         upstream: not recorded")
                continue
            print(f"         upstream: {fid.repository} @ {fid.commit}")
            for d in fid.deviations:
                print(f"         - {d.aspect}: upstream {d.upstream}; ours {d.ours}; why: {d.why}; "
                      f"effect: {d.effect}")


def cmd_upstream_export(args: argparse.Namespace) -> None:
    from gs.methods.registry import upstream_pin
    from gs.upstream.recipes import recipes
    from gs.upstream.runner import UpstreamError, export_sources

    have = recipes()
    for method in args.methods:
        if method not in have:
            raise ValueError(f"method '{method}' has no upstream recipe (recipes: {sorted(have)})")
    pins = {method: upstream_pin(method) for method in args.methods or sorted(have)}
    try:
        export_sources(args.dest, pins, have)
    except UpstreamError as exc:
        raise ValueError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m gs", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="write a procedural test scene in the COLMAP layout")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--views", type=int, default=24)
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--height", type=int, default=120)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("train", help="train a method on one scene")
    p.add_argument("scene", help="scene folder (COLMAP sparse/ + images/, or transforms.json)")
    p.add_argument("out", help="output folder (point_cloud.ply, train_stats.json, checkpoints/)")
    p.add_argument("--method", default="3dgs")
    p.add_argument("--variant", default=None, help="the method's variant (rate point); default: its default")
    p.add_argument("--dataset", default=None, help="dataset name, selects the method's presets")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a method parameter")
    p.add_argument("--iterations", type=_int_at_least(1), default=30_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "gsplat", "inria"])
    p.add_argument("--device", default="auto")
    p.add_argument("--checkpoint-every", type=_int_at_least(0), default=0)
    p.add_argument("--restart", action="store_true",
                   help="delete checkpoints of a different run in the output folder and start fresh")
    p.add_argument("--init-checkpoint", default=None, help="start from another run's checkpoint")
    p.add_argument("--save-at", type=int, action="append", help="also save a PLY at this iteration")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_scene_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="render the test views of a model and compute the metrics")
    p.add_argument("model")
    p.add_argument("scene")
    p.add_argument("out")
    p.add_argument("--method", default="unknown")
    p.add_argument("--variant", default="default")
    p.add_argument("--dataset", default="custom")
    p.add_argument("--size-of", default=None, help="file or folder whose size is the model size (a bitstream)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--seed", type=int, default=0)
    _add_scene_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("render", help="render views of a model to PNG")
    p.add_argument("model")
    p.add_argument("scene")
    p.add_argument("out")
    p.add_argument("--split", choices=["test", "train"], default="test")
    p.add_argument("--backend", default="auto")
    _add_scene_args(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("compress", help="compress a trained model with a codec")
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--codec", required=True)
    p.add_argument("--variant", default=None)
    p.add_argument("--dataset", default=None)
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.add_argument("--scene", default=None, help="scene folder (codecs that use the training views)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--seed", type=int, default=0)
    _add_scene_args(p)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("methods", help="list the registered methods (built in and plug-ins)")
    p.add_argument("--params", action="store_true", help="also list each method's parameters and their ranges")
    p.add_argument("--deviations", action="store_true",
                   help="also list each method's upstream code (pinned commit) and our deviations from it")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("upstream-export",
                       help="clone the authors' code at the pinned commits into a folder (upstream_sources "
                            "of a machine without internet)")
    p.add_argument("dest")
    p.add_argument("methods", nargs="*", help="method ids (default: every method with an upstream recipe)")
    p.set_defaults(func=cmd_upstream_export)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        # str() of a KeyError is the repr of its message (in quotes): print the message itself
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
