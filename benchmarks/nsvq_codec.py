"""Benchmark: NSVQ-GS encode + decode time at scale (target: at most 10 s together for 1M).

    python benchmarks/nsvq_codec.py --num 1000000 --device cuda --out DIR

A synthetic trained-like model of ``--num`` Gaussians (benchmarks/hgsc_choices.py) is
hard-quantized once with the variant's codebook sizes (k-means over every Gaussian, as NSVQ-GS
initialises its codebooks; not timed), which stands in for a training run's codebooks and
frozen indices. Then the codec encodes it from those artifacts, as the pipeline's encode rule
does after training, and decodes it ``--repeat`` times on ``--device`` (median reported; the
first decode is a warm-up when ``--repeat`` > 1). Writes ``nsvq_codec.md`` into ``--out``:
sizes in our container and in upstream's layout, encode and decode seconds, bit-exactness.
"""

from __future__ import annotations

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
from gs.codecs.base import CodecContext  # noqa: E402
from gs.codecs.vq import attr_matrix  # noqa: E402
from gs.methods.nsvqgs import ARTIFACT_KEY, VQ_ATTRS, NSVQCodec, kmeans, nearest_code  # noqa: E402
from gs.methods.registry import get_method  # noqa: E402


def trained_like(model, k: dict[str, int], device: str) -> dict[str, dict]:
    """Codebooks and indices of every quantized attribute (k-means, 10 Lloyd iterations), the
    model's attributes replaced by their codes, as a training run leaves them."""
    aux, gen = {}, torch.Generator(device=device).manual_seed(0)
    for key, kname in VQ_ATTRS.items():
        x = attr_matrix(model.params, key).detach()
        if x.shape[1] == 0:
            continue
        cb = kmeans(x, k[kname], generator=gen)
        idx = nearest_code(x, cb)
        with torch.no_grad():
            model.params[key].copy_(cb[idx].reshape(model.params[key].shape))
        aux[f"codebook.{key}"], aux[f"index.{key}"] = cb.cpu().numpy(), idx.cpu().numpy()
    return {ARTIFACT_KEY: aux}


def main() -> None:
    ap = scale_parser(__doc__, "k4k")
    args = ap.parse_args()
    params = get_method("nsvqgs").params_for(args.variant)
    k = {name: int(params[name]) for name in VQ_ATTRS.values()}
    model = synthetic_model(args.num).to(args.device)
    aux = trained_like(model, k, args.device)
    codec = NSVQCodec(**{**k, "entropy_coding": params.get("entropy_coding", True)})
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sync(args.device)
        t0 = time.perf_counter()
        stats = codec.encode(model, Path(tmp) / "bs", CodecContext(aux=aux))
        sync(args.device)
        encode_s = time.perf_counter() - t0 - stats["statistics_seconds"]  # as the compress rule reports it
        times = []
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            decoded = NSVQCodec().decode(Path(tmp) / "bs", device=args.device)
            sync(args.device)
            times.append(time.perf_counter() - t0)
    timed = times[1:] if len(times) > 1 else times
    exact = all(torch.equal(decoded.params[p].to(args.device), model.params[p].detach()) for p in model.params)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    md = [f"# NSVQ-GS encode + decode at scale ({device})", "",
          f"`python benchmarks/nsvq_codec.py --num {args.num} --device {args.device} --variant {args.variant} "
          f"--repeat {args.repeat}`", "",
          "| #G | codebooks (scale/rot/DC/SH) | size MB (ours) | size MB (upstream's zip) | encode s | "
          "decode s (median) | decode s (all) | encode + decode s | bit-exact |",
          "|---|---|---|---|---|---|---|---|---|",
          f"| {args.num:,} | {'/'.join(str(k[n]) for n in VQ_ATTRS.values())} | {stats['size_bytes'] / 1e6:.2f} "
          f"| {stats['size_bytes_paper_format'] / 1e6:.2f} | {encode_s:.2f} | {statistics.median(timed):.2f} "
          f"| {', '.join(f'{t:.2f}' for t in times)} | {encode_s + statistics.median(timed):.2f} | {exact} |", "",
          "Encode starts from the codebooks and indices a training run leaves (the k-means that stands in for "
          "training is not timed): it writes the container (index streams entropy coded); building upstream's zip "
          "in memory for the second size is not counted, as in the compress rule."]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "nsvq_codec.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
