"""Run a registered codec over a trained model: encode, decode from the bitstream alone,
write the decoded model and the codec statistics."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gs.codecs.base import Codec, CodecContext, bitstream_size
from gs.io import write_json
from gs.model import GaussianModel


def make_codec(method_id: str, params: dict[str, Any]) -> Codec:
    from gs.methods.registry import get_method

    spec = get_method(method_id)
    cls = spec.load("codec")
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"codec '{method_id}': bad parameters {sorted(params)}: {exc}") from exc


def load_aux(model_dir: Path) -> dict[str, Any]:
    """Training artifacts saved next to a model (``*.npz``/``*.npy``), for trained codecs."""
    aux: dict[str, Any] = {}
    for p in sorted(model_dir.glob("*.npz")):
        with np.load(p, allow_pickle=False) as z:
            aux[p.stem] = {k: z[k] for k in z.files}
    for p in sorted(model_dir.glob("*.npy")):
        aux[p.stem] = np.load(p, allow_pickle=False)
    return aux


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_codec(method_id: str, params: dict[str, Any], model_path: str | Path, out_dir: str | Path, *,
              scene=None, backend: str = "auto", device: str | torch.device | None = None,
              seed: int = 0) -> dict[str, Any]:
    """Encode ``model_path`` with codec ``method_id`` into ``out_dir/bitstream``, decode it
    again into ``out_dir/point_cloud.ply`` and return/write ``codec_stats.json``.

    The bitstream is written to a temporary folder and renamed when complete, so a failed
    encode leaves nothing that looks finished."""
    model_path, out_dir = Path(model_path), Path(out_dir)
    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(seed)
    model = GaussianModel.load_ply(model_path, device=dev)
    codec = make_codec(method_id, params)
    ctx = CodecContext(scene=scene, backend=backend, device=dev, aux=load_aux(model_path.parent), seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / "bitstream"
    tmp = out_dir / "bitstream.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    _sync(dev)
    t0 = time.perf_counter()
    try:
        enc = codec.encode(model, tmp, ctx)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed encode leaves no partial bitstream
        raise
    _sync(dev)
    t_enc = time.perf_counter() - t0
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    _sync(dev)
    t0 = time.perf_counter()
    decoded = make_codec(method_id, params).decode(final, device=dev)
    _sync(dev)
    t_dec = time.perf_counter() - t0
    decoded.save_ply(out_dir / "point_cloud.ply")
    stats = {
        "method": method_id,
        "params": params,
        "input_model": str(model_path),
        "input_num_gaussians": model.num_gaussians,
        "num_gaussians": decoded.num_gaussians,
        "size_bytes": bitstream_size(final),
        # without the seconds the encoder spent on statistics only (e.g. a size in another layout)
        "encode_seconds": t_enc - float(enc.get("statistics_seconds") or 0.0),
        "decode_seconds": t_dec,
        "device": str(dev),
        **{k: v for k, v in enc.items() if k != "size_bytes"},
        "encoder_reported_size_bytes": enc.get("size_bytes"),
    }
    write_json(out_dir / "codec_stats.json", stats)
    return stats
