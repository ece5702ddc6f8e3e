"""Benchmark (CPU): HGSC's coding choices - geometry, anchor attributes, LoD residuals.

    python benchmarks/hgsc_choices.py --num 150000 --out benchmarks/results/hgsc_choices.md
    python benchmarks/hgsc_choices.py --ply path/to/point_cloud.ply   # a saved model instead

Measures, on one model (a saved PLY, or a synthetic "trained-like" model: Gaussians on
textured surfaces with spatially smooth attributes plus noise, and 5 % far-away floaters
that stretch the bounding box as real scenes do):

1. geometry coders on the 15-bit grid: our octree + adaptive range coder (with / without the
   sibling contexts), the occupancy bytes with the measured-best static coder of
   gs.codecs.entropy, DracoPy's kd-tree coder (if installed), fixed 45 bits/point;
2. anchor attributes (15-bit per-column quantization): integer RAHT + our class/mantissa
   coder, the same coder on Morton-order differences (DPCM), and no transform (measured-best
   static coder per column);
3. LoD residuals (8/4 bits): our per-column adaptive range coder, upstream's packed bits + zlib
   per group, the measured-best static coder per column;
4. the full codec over its RD variants (without a scene pruning is skipped, so the variants
   differ only in their LoD bit depths here): size per component, time, attribute error.

Writes a Markdown table; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
import warnings
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gs.codecs.entropy import encode_symbols, pack_bits, symbols_method  # noqa: E402
from gs.codecs import column_streams, octree, quantize, raht  # noqa: E402
from gs.methods import hgsc as H  # noqa: E402
from gs.model import GaussianModel  # noqa: E402


def synthetic_model(n: int, seed: int = 0, degree: int = 3) -> GaussianModel:
    """Gaussians on spheres and a ground plane with smooth attribute fields + noise."""
    rng = np.random.default_rng(seed)
    n_float = n // 20
    n_surf = n - n_float
    kind = rng.integers(0, 7, n_surf)
    pts = np.empty((n_surf, 3))
    plane = kind == 0
    pts[plane] = np.c_[rng.uniform(-3, 3, (plane.sum(), 2)), np.zeros(plane.sum())]
    centres = rng.uniform(-2, 2, (6, 3)) * [1, 1, 0] + [0, 0, 0.8]
    radii = rng.uniform(0.3, 0.8, 6)
    for s in range(6):
        sel = kind == s + 1
        d = rng.normal(size=(sel.sum(), 3))
        pts[sel] = centres[s] + radii[s] * d / np.linalg.norm(d, axis=1, keepdims=True)
    pts += rng.normal(scale=0.004, size=pts.shape)
    far = rng.normal(size=(n_float, 3))
    far = far / np.linalg.norm(far, axis=1, keepdims=True) * rng.uniform(8, 40, (n_float, 1))
    xyz = np.concatenate([pts, far]).astype(np.float32)

    k = (degree + 1) ** 2
    d_attr = 3 * k + 8

    def field(count: int, freq: float) -> np.ndarray:
        w = rng.normal(scale=freq, size=(count, 8, 3))
        ph = rng.uniform(0, 2 * np.pi, (count, 8))
        return np.sin(np.einsum("cfj,nj->ncf", w, xyz) + ph[None]).mean(2) * 1.5  # (N, count)

    smooth = field(d_attr, 2.0)
    noise = rng.normal(size=(len(xyz), d_attr))
    a = 0.7 * smooth + 0.3 * noise
    dc = a[:, :3] * 1.0 + 0.3
    rest = (a[:, 3:3 * k] * np.repeat(0.12 / np.arange(1, degree + 1), [2 * l + 1 for l in range(1, degree + 1)])
            .repeat(3)[None] if degree else a[:, 3:3])
    opac = np.where(rng.random(len(xyz)) < 0.3, -4.0, 2.5) + a[:, 3 * k] * 1.5
    scales = -4.5 + a[:, 3 * k + 1:3 * k + 4] * 0.8
    scales[n_surf:] += 3.0
    quats = a[:, 3 * k + 4:3 * k + 8] * 0.6 + np.array([0.8, 0, 0, 0])
    t = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))  # noqa: E731
    return GaussianModel(dict(means=t(xyz), scales=t(scales), quats=t(quats), opacities=t(opac),
                              sh0=t(dc.reshape(-1, 1, 3)),
                              shN=t(rest.reshape(-1, 3, k - 1).transpose(0, 2, 1))), degree)


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def bench_geometry(codes: np.ndarray, q: np.ndarray, bits: int) -> list[str]:
    n = len(codes)
    out = [row("geometry coder", "bytes", "bits/point", "encode s", "decode s", "lossless"), row(*["---"] * 6)]
    data, te = timed(H.encode_octree, codes, bits)
    back, td = timed(H.decode_octree, data, bits, n)
    out.append(row("octree + adaptive range coder, sibling contexts (ours, default)", len(data),
                   f"{8 * len(data) / n:.2f}", f"{te:.2f}", f"{td:.2f}", np.array_equal(back, codes)))
    data, te = timed(H.encode_octree, codes, bits, use_context=False)
    back, td = timed(H.decode_octree, data, bits, n, use_context=False)
    out.append(row("octree + adaptive range coder, one context per level", len(data),
                   f"{8 * len(data) / n:.2f}", f"{te:.2f}", f"{td:.2f}", np.array_equal(back, codes)))
    occ = np.concatenate([o for o, _ in octree.octree_levels(codes, bits)])
    data, te = timed(encode_symbols, occ, 256)
    out.append(row(f"octree bytes, best static coder ({symbols_method(data)})", len(data),
                   f"{8 * len(data) / n:.2f}", f"{te:.2f}", "", True))
    try:
        import DracoPy  # noqa: F401

        data, te = timed(H.encode_geometry_draco, q, bits)
        back, td = timed(H.decode_geometry_draco, data, bits)
        ok = np.array_equal(np.sort(H.morton_encode(back, bits)), codes)
        out.append(row("DracoPy kd-tree (level 10, 15-bit quantization)", len(data),
                       f"{8 * len(data) / n:.2f}", f"{te:.2f}", f"{td:.2f}", ok))
    except ImportError:
        out.append(row("DracoPy kd-tree", "not installed", "", "", "", ""))
    out.append(row("fixed 3 x 15 bits", (45 * n + 7) // 8, "45.00", "", "", True))
    return out


def bench_anchors(a_q: np.ndarray, codes: np.ndarray) -> list[str]:
    n, d = a_q.shape
    out = [row("anchor attribute coder (15-bit values)", "bytes", "bits/value", "encode s"), row(*["---"] * 4)]
    tree = H.raht_structure(codes)

    def ours():
        highs, dc = H.raht_forward(a_q, tree)
        c, m = H.encode_coefficients(highs, raht.raht_weight_class(tree, H.ANCHOR_WEIGHT_CLASSES), H.ANCHOR_WEIGHT_CLASSES)
        return sum(map(len, c)) + len(m) + dc.size * 4

    size, te = timed(ours)
    out.append(row("integer RAHT + class/mantissa adaptive coder (ours, default)", size,
                   f"{8 * size / a_q.size:.2f}", f"{te:.2f}"))

    def dpcm():
        diff = np.diff(a_q, axis=0)
        c, m = H.encode_coefficients(diff, np.zeros(len(diff), dtype=np.int64), 1)
        return sum(map(len, c)) + len(m) + d * 4

    size, te = timed(dpcm)
    out.append(row("Morton-order DPCM + the same coder", size, f"{8 * size / a_q.size:.2f}", f"{te:.2f}"))

    def raw():
        return sum(len(encode_symbols(a_q[:, c], int(a_q[:, c].max()) + 1, methods=["fixed", "zlib", "ans"]))
                   for c in range(d))

    size, te = timed(raw)
    out.append(row("no transform, best static coder per column", size, f"{8 * size / a_q.size:.2f}", f"{te:.2f}"))
    return out


def bench_lod(lq: np.ndarray, groups, label: str) -> list[str]:
    out = [row(f"{label} residual coder", "bytes", "bits/Gaussian", "encode s"), row(*["---"] * 4)]
    n = len(lq)
    data, te = timed(column_streams.encode_single_stream, lq, quantize.group_levels(groups) + 1)
    out.append(row("adaptive range coder per column (ours, default)", len(data), f"{8 * len(data) / n:.1f}",
                   f"{te:.2f}"))

    def upstream():
        return sum(len(zlib.compress(pack_bits(lq[:, sl].ravel(), b))) for _, sl, b in groups)

    size, te = timed(upstream)
    out.append(row("upstream: packed bits + zlib per group", size, f"{8 * size / n:.1f}", f"{te:.2f}"))
    lv = quantize.group_levels(groups)

    def static():
        return sum(len(encode_symbols(lq[:, c], int(lv[c]) + 1, methods=["fixed", "zlib", "ans"]))
                   for c in range(lq.shape[1]))

    size, te = timed(static)
    out.append(row("best static coder per column (ANS with counts table, zlib, fixed)", size,
                   f"{8 * size / n:.1f}", f"{te:.2f}"))
    return out


def bench_codec(model: GaussianModel, tmp: Path) -> list[str]:
    from gs.methods.registry import get_method

    spec = get_method("hgsc")
    out = [row("variant", "params", "#Gaussians", "size MB", "ratio vs PLY", "geometry", "anchors", "lod1", "lod2",
               "encode s", "decode s", "bit-exact", "RMSE dc / rest / opacity / scale / rot"), row(*["---"] * 13)]
    ply = model.ply_num_bytes()
    src_attr = H.attribute_matrix(model)
    from scipy.spatial import cKDTree

    tree = cKDTree(model.means.detach().numpy())
    for name in spec.variants:
        params = spec.params_for(name)
        codec = H.HGSCCodec(**params)
        d = tmp / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stats, te = timed(codec.encode, model, d)
        dec, td = timed(H.HGSCCodec(**params).decode, d)
        exact = all(torch.equal(dec.params[k], codec.reconstruction.params[k]) for k in dec.params)
        _, idx = tree.query(dec.means.detach().numpy())
        err = H.attribute_matrix(dec) - src_attr[idx]
        lay = H.attribute_layout(model.sh_degree)
        rest = slice(lay["rest_y"].start, lay["rest_v"].stop)
        rmse = " / ".join(f"{np.sqrt((err[:, sl] ** 2).mean()):.3g}"
                          for sl in (lay["dc"], rest, lay["opacity"], lay["scale"], lay["rotation"]))
        c = stats["components"]
        shown = {k: v for k, v in spec.variants[name].items()}
        out.append(row(name, shown or "(paper default)", stats["num_gaussians"], f"{stats['size_bytes'] / 1e6:.3f}",
                       f"{ply / stats['size_bytes']:.1f}", c["geometry"], c["anchors"], c["lod1"], c["lod2"],
                       f"{te:.2f}", f"{td:.2f}", exact, rmse))
    return out


def bench_model(model: GaussianModel, source: str) -> list[str]:
    p = H.HGSCParams()
    attrs = H.attribute_matrix(model)
    xyz = model.means.detach().numpy()
    q_all = H.quantize_positions(xyz, xyz.min(0), xyz.max(0), p.xyz_bits)
    codes, first = np.unique(H.morton_encode(q_all, p.xyz_bits), return_index=True)
    attrs = attrs[first]
    q = H.morton_decode(codes, p.xyz_bits)
    labels, t_part = timed(H.partition, q, p)
    ia = np.flatnonzero(labels == 0)
    a_vals = attrs[ia]
    a_q = H.quantize_columns(a_vals, a_vals.min(0), a_vals.max(0), 2 ** p.anchor_bits)
    a_rec = H.dequantize_columns(a_q, a_vals.min(0), a_vals.max(0), 2 ** p.anchor_bits).astype(np.float32)
    groups = H.lod_groups(model.sh_degree, p)
    il = np.flatnonzero(labels == 1)
    pred = a_rec[H.nearest_reference(q[ia], q[il])]
    lq, _, _ = quantize.group_quantize(attrs[il].astype(np.float64) - pred, groups)
    lines = [
        f"## {source}", "",
        f"{model.num_gaussians} Gaussians, SH degree {model.sh_degree}, PLY {model.ply_num_bytes() / 1e6:.2f} MB; "
        f"{len(codes)} occupied voxels on the {p.xyz_bits}-bit grid; partition "
        f"{np.bincount(labels, minlength=3).tolist()} (anchors / LoD1 / LoD2) in {t_part:.2f} s.", "",
        "### Geometry (lossless, 15-bit grid)", "", *bench_geometry(codes, q, p.xyz_bits), "",
        f"### Anchor attributes ({len(ia)} anchors x {attrs.shape[1]} columns)", "",
        *bench_anchors(a_q, codes[ia]), "",
        f"### LoD1 residuals ({len(il)} Gaussians, bit depths 8 / UV-rest 4)", "", *bench_lod(lq, groups, "LoD1"), "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        lines += ["### Full codec, registry variants (no scene: significance pruning skipped)", "",
                  *bench_codec(model, Path(tmp)), ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--num", type=int, default=150_000, help="Gaussians of the synthetic model (0: none)")
    ap.add_argument("--ply", type=Path, nargs="*", default=[], help="also benchmark these saved 3DGS PLYs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "hgsc_choices.md")
    args = ap.parse_args(argv)
    cmd = "python benchmarks/hgsc_choices.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = ["# HGSC coding choices (CPU benchmark)", "",
             f"Produced by `{cmd.strip()}` on {platform.machine()} with {torch.get_num_threads()} torch threads "
             "(a shared machine: timings are indicative only). Sizes in bytes; see the script's docstring "
             "for what each row is.", ""]
    if args.num > 0:
        lines += bench_model(synthetic_model(args.num, args.seed),
                             f"Synthetic trained-like model ({args.num} Gaussians, seed {args.seed})")
    for path in args.ply:
        lines += bench_model(GaussianModel.load_ply(path), f"Saved model `{path.name}` ({path})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
