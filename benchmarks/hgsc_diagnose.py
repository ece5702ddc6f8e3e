"""Diagnosis: which HGSC stage loses the fidelity on a given model.

    python benchmarks/hgsc_diagnose.py MODEL.ply SCENE_DIR --images images_4 --out DIR [--variant default]

Encodes the model with the variant, then measures fidelity PSNR (renders of the test views
against the uncompressed model's) for: the significance-pruned model alone; the pruned model on
the 15-bit grid; the decoded model; and the decoded model with one attribute group put back to its
original values (for every group), so the group whose restoration recovers most is the culprit.
Also prints each attribute group's value range (1st/50th/99th percentile, min, max) and the LoD
residual ranges the encoder used. Writes ``hgsc_diagnosis.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gs.codecs.base import CodecContext  # noqa: E402
from gs.data import load_scene  # noqa: E402
from gs.methods import hgsc  # noqa: E402
from gs.methods.registry import get_method  # noqa: E402
from gs.model import GaussianModel  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("scene")
    ap.add_argument("--images", default=None)
    ap.add_argument("--resolution", type=int, default=-1)
    ap.add_argument("--variant", default="default")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    scene = load_scene(args.scene, images=args.images, resolution=args.resolution)
    model = GaussianModel.load_ply(args.model, device=dev)
    params = get_method("hgsc").params_for(args.variant, None, scene.name, {})
    codec = hgsc.HGSCCodec(**params)
    p = codec.p
    lines = [f"# HGSC diagnosis: {args.model}, variant {args.variant}", "",
             f"{model.num_gaussians} Gaussians, scene {scene.name}, device {dev}", ""]

    def fid(m: GaussianModel) -> float:
        return hgsc.render_fidelity(model, m, scene, backend=args.backend)["psnr"]

    # attribute ranges of the input
    attrs = hgsc.attribute_matrix(model)
    lay = hgsc.attribute_layout(model.sh_degree)
    lines += ["| group | p1 | p50 | p99 | min | max |", "|---|---|---|---|---|---|"]
    for name, sl in lay.items():
        v = attrs[:, sl]
        if v.size:
            q = np.percentile(v, [1, 50, 99])
            lines.append(f"| {name} | {q[0]:.3g} | {q[1]:.3g} | {q[2]:.3g} | {v.min():.3g} | {v.max():.3g} |")
    xyz = model.params["means"].detach().cpu().numpy()
    lines += ["", f"xyz min {xyz.min(0)}, max {xyz.max(0)}, p1 {np.percentile(xyz, 1, axis=0)}, "
              f"p99 {np.percentile(xyz, 99, axis=0)}", ""]

    # 1. pruning alone, 2. + the 15-bit grid
    scores = hgsc.significance_scores(model, scene.train_cameras, backend=args.backend,
                                      volume_quantile=p.volume_quantile, volume_exponent=p.volume_exponent)
    keep = hgsc.prune_least_significant(scores, p.prune_percent)
    pruned = model.detached_copy()
    from gs.train import ops

    mask = np.zeros(model.num_gaussians, dtype=bool)
    mask[keep] = True
    ops.keep_only(pruned, None, torch.from_numpy(mask).to(dev))
    rows = [("pruned only", fid(pruned))]
    x = pruned.params["means"].detach().cpu().numpy()
    lo, hi = x.min(0).astype(np.float32), x.max(0).astype(np.float32)
    grid = pruned.detached_copy()
    qg = hgsc.quantize_positions(x, lo, hi, p.xyz_bits)
    grid.params["means"] = torch.from_numpy(hgsc.dequantize_positions(qg, lo, hi, p.xyz_bits).astype(np.float32)).to(dev)
    rows.append((f"pruned + {p.xyz_bits}-bit grid (no merge)", fid(grid)))
    step = (hi - lo) / (2 ** p.xyz_bits - 1)
    lines += [f"grid step per axis: {step} (bbox {lo} .. {hi})", ""]

    # 3. the codec
    stats = codec.encode(model, out / "bitstream", CodecContext(scene=scene, backend=args.backend, device=dev))
    dec = codec.decode(out / "bitstream", device=dev)
    rows.append(("decoded", fid(dec)))
    lines += [f"size {stats['size_bytes'] / 1e6:.3f} MB, components {stats['components']}, "
              f"merged duplicates {stats.get('merged_duplicates')}", ""]

    # 4. decoded with one group restored: match decoded rows to pruned Gaussians by grid cell
    pa = hgsc.attribute_matrix(pruned)
    codes_p = hgsc.morton_encode(qg, p.xyz_bits)
    qd = hgsc.quantize_positions(dec.params["means"].detach().cpu().numpy(), lo, hi, p.xyz_bits)
    codes_d = hgsc.morton_encode(qd, p.xyz_bits)
    order = np.argsort(codes_p, kind="stable")
    pos = np.searchsorted(codes_p[order], codes_d)
    pos = np.clip(pos, 0, len(order) - 1)
    match = order[pos]
    ok = codes_p[match] == codes_d
    lines += [f"decoded rows matched to a pruned Gaussian by grid cell: {ok.mean() * 100:.1f} %", ""]
    da = hgsc.attribute_matrix(dec)
    for name, sl in lay.items():
        if sl.stop == sl.start:
            continue
        fixed = da.copy()
        fixed[ok, sl] = pa[match[ok], sl]
        m = hgsc.model_from_attributes(dec.params["means"].detach().cpu().numpy(), fixed, dec.sh_degree, dev)
        rows.append((f"decoded, {name} restored", fid(m)))
    lines += ["| model | fidelity PSNR |", "|---|---|"] + [
        f"| {a} | {'identical renders' if b is None else f'{b:.2f}'} |" for a, b in rows]
    (out / "hgsc_diagnosis.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
