"""Evaluate one model on the test views of one scene and write its metrics JSON.

The protocol follows 3DGS ``render.py`` + ``metrics.py``: render every test view, quantise to
8 bits (PNG), compute PSNR / SSIM / LPIPS-VGG per image from the 8-bit images, report the mean
over the views. PNG is lossless, so computing on the uint8 tensors we write is identical to
reading the files back.

The JSON (``SCHEMA_VERSION``) is self-describing: protocol, per-image and mean metrics,
size, #Gaussians, timings, FPS, peak GPU memory, seed, versions, git commit, input hashes,
backend and device. A value that is missing is ``null`` with a ``<key>_reason`` string beside
it in the same object; nothing is invented.

:func:`evaluate_model` runs the steps in order, each usable on its own: :func:`render_and_score`
(the metric pass, also the warm-up), :func:`measure_fps` and :func:`peak_memory`, then
:func:`metrics_record` written with :func:`gs.io.write_json`.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from gs.camera import Camera
from gs.eval.metrics import LPIPS_NET, LpipsMetric, from_uint8, psnr, ssim, to_uint8
from gs.eval.provenance import describe_device, git_commit, sha256_files, versions
from gs.io import write_json

SCHEMA_VERSION = 1
MB = 1_000_000
SPLIT_RULE = "every 8th of sorted names (index % 8 == 0) is test"
TIMING_KEYS = ("train_seconds", "encode_seconds", "decode_seconds")

# Keys every metrics JSON has at the top level (a test and the report rely on them).
REQUIRED_KEYS = (
    "schema_version", "dataset", "scene", "method", "variant", "protocol", "metrics",
    "per_image", "size_bytes", "size_mb", "num_gaussians", "timings", "fps", "fps_device",
    "peak_gpu_memory_bytes", "seed", "versions", "git_commit", "input_sha256", "backend",
    "device", "created",
)


def _set(d: dict[str, Any], key: str, value: Any, reason: str) -> None:
    """``d[key] = value``; a None (or non-finite float) value gets ``d[key_reason] = reason``."""
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    d[key] = value
    if value is None:
        d[f"{key}_reason"] = reason


def _save_png(img_u8: torch.Tensor, path: Path) -> None:
    Image.fromarray(img_u8.cpu().numpy()).save(path)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _gt_image(scene_image: torch.Tensor, cam_name: str, h: int, w: int) -> torch.Tensor:
    gt = scene_image
    if gt.dtype != torch.uint8:
        gt = to_uint8(gt)
    if gt.dim() != 3 or gt.shape[-1] < 3:
        raise ValueError(f"test image '{cam_name}': expected (H,W,3) uint8, got {tuple(gt.shape)}")
    gt = gt[..., :3]
    if tuple(gt.shape[:2]) != (h, w):
        raise ValueError(f"test image '{cam_name}' is {gt.shape[1]}x{gt.shape[0]} but its camera "
                         f"renders {w}x{h}")
    return gt


@dataclass
class RunInfo:
    """What the metrics JSON says about the run besides its scores (see :func:`evaluate_model`)."""

    method: str
    dataset: str
    variant: str = "default"
    scene_name: str | None = None
    seed: int = 0
    size_bytes: int | None = None
    size_reason: str = "size_bytes not given by the caller"
    model_path: str | Path | None = None
    input_files: list[str | Path] | None = None
    extra: dict[str, Any] | None = None


@dataclass
class EvalViews:
    """The test views of one scene on the evaluation device, and the backend that renders them."""

    scene: Any
    cameras: list[Camera]
    background: torch.Tensor
    backend: str
    device: torch.device

    @classmethod
    def of(cls, scene, scene_name: str, backend: str = "auto",
           device: str | torch.device | None = None) -> "EvalViews":
        """Resolve device and backend (failing early, naming the backend, when it cannot run
        here) and check that the scene has matching test cameras and images."""
        from gs.render import get_backend, resolve_backend_name

        dev = torch.device(device) if device is not None else (
            torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
        if backend == "auto":
            backend_name = resolve_backend_name(backend, dev)
        else:
            get_backend(backend, dev)
            backend_name = backend
        if not scene.test_cameras:
            raise ValueError(f"scene '{scene_name}' has no test views to evaluate")
        if len(scene.test_cameras) != len(scene.test_images):
            raise ValueError(f"scene '{scene_name}': {len(scene.test_cameras)} test cameras but "
                             f"{len(scene.test_images)} test images")
        return cls(scene, [c.to(dev) for c in scene.test_cameras], scene.background.to(dev), backend_name, dev)

    def render(self, model, cam: Camera):
        from gs.render import render

        return render(model, cam, backend=self.backend, background=self.background)


def render_and_score(model, views: EvalViews, out_dir: Path, *, lpips_metric: LpipsMetric,
                     save_gt: bool = True, progress: bool = True, label: str = "") -> tuple[list[dict], dict]:
    """Render every test view, write ``out_dir/renders/NNNNN.png`` (and ``out_dir/gt/`` when
    ``save_gt``), score the 8-bit images; return (per-image entries, mean metrics)."""
    from tqdm.auto import tqdm

    render_dir = out_dir / "renders"
    render_dir.mkdir(parents=True, exist_ok=True)
    gt_dir = out_dir / "gt"
    if save_gt:
        gt_dir.mkdir(parents=True, exist_ok=True)
    per_image: list[dict[str, Any]] = []
    bar = tqdm(list(enumerate(views.cameras)), desc=f"eval {label}".strip(), unit="view", disable=not progress)
    for i, cam in bar:
        out = views.render(model, cam)
        pred = to_uint8(out.image[..., :3].clamp(0.0, 1.0))  # (H,W,3) uint8
        gt = _gt_image(views.scene.test_images[i], cam.name or str(i), cam.height, cam.width).to(views.device)
        fname = f"{i:05d}.png"
        _save_png(pred, render_dir / fname)
        entry: dict[str, Any] = {"index": i, "name": cam.name, "render": f"renders/{fname}"}
        if save_gt:
            _save_png(gt, gt_dir / fname)
            entry["gt"] = f"gt/{fname}"
        else:
            entry["gt"] = cam.image_path
            if cam.image_path is None:
                entry["gt_reason"] = "ground truth not saved (save_gt=False) and the camera names no image file"

        a = from_uint8(pred).permute(2, 0, 1)[None]
        b = from_uint8(gt).permute(2, 0, 1)[None]
        _set(entry, "psnr", float(psnr(a, b)), "identical to the ground truth (MSE = 0): PSNR is +inf")
        entry["ssim"] = float(ssim(a, b))
        lp = lpips_metric(a, b)
        _set(entry, "lpips", None if lp is None else float(lp.flatten()[0]), lpips_metric.reason or "")
        per_image.append(entry)
        if progress:
            bar.set_postfix(psnr=f"{entry['psnr']:.2f}" if entry["psnr"] is not None else "inf")

    metrics: dict[str, Any] = {}
    for key in ("psnr", "ssim", "lpips"):
        vals = [e[key] for e in per_image]
        if any(v is None for v in vals):
            why = next(e.get(f"{key}_reason") for e in per_image if e[key] is None)
            _set(metrics, key, None, f"undefined for at least one view: {why}")
        else:
            metrics[key] = float(np.mean(vals))
    return per_image, metrics


def measure_fps(model, views: EvalViews, repeats: int | None = None) -> dict[str, Any]:
    """Render-only frame rate: the median over ``repeats`` timed passes over all test views
    (default 5 on CUDA, 1 on CPU; 0 skips it). Call it after a warm-up (the metric pass). On
    CUDA the peak-memory counter is reset first, so a later :func:`peak_memory` covers these
    renders."""
    dev, n = views.device, len(views.cameras)
    if repeats is None:
        repeats = 5 if dev.type == "cuda" else 1
    out: dict[str, Any] = {"fps_device": dev.type, "fps_repeats": repeats}
    if repeats <= 0:
        _set(out, "fps", None, "FPS not measured (fps_repeats=0)")
        return out
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    rates = []
    for _ in range(repeats):
        _sync(dev)
        t0 = time.perf_counter()
        for cam in views.cameras:
            views.render(model, cam)
        _sync(dev)
        rates.append(n / (time.perf_counter() - t0))
    out["fps"] = float(statistics.median(rates))
    out["fps_runs"] = rates
    out["fps_note"] = (f"median over {repeats} timed passes over all {n} test views (render only, after a "
                       "warm-up pass)" + ("" if dev.type == "cuda" else "; measured on CPU, not comparable to GPU FPS"))
    return out


def peak_memory(device: torch.device, fps_measured: bool, lpips_loaded: bool) -> dict[str, Any]:
    """``peak_gpu_memory_bytes`` (with a note saying what it covers), or null on a CPU."""
    out: dict[str, Any] = {}
    if device.type == "cuda":
        out["peak_gpu_memory_bytes"] = int(torch.cuda.max_memory_allocated(device))
        out["peak_gpu_memory_note"] = (
            "torch.cuda.max_memory_allocated during the "
            + ("FPS renders" if fps_measured else "metric pass (renders + SSIM/LPIPS)")
            + "; includes the resident model" + (" and LPIPS network" if lpips_loaded else ""))
    else:
        _set(out, "peak_gpu_memory_bytes", None, f"evaluated on {device.type}, no GPU memory to measure")
    return out


def _protocol(views: EvalViews) -> dict[str, Any]:
    scene = views.scene
    widths = sorted({(c.width, c.height) for c in views.cameras})
    w0, h0 = widths[0]
    return {
        "resolution": f"{w0}x{h0}" if len(widths) == 1 else "mixed",
        "width": w0, "height": h0,
        "resolutions": [f"{w}x{h}" for w, h in widths],
        "image_folder": scene.image_folder,
        "resolution_note": scene.resolution_note,
        "undistortion": scene.undistortion,
        "split": SPLIT_RULE,
        "num_test_views": len(views.cameras),
        "white_background": bool(scene.white_background),
        "image_bit_depth": 8,
        "metrics_on": "8-bit quantised renders (x*255+0.5, clamped) vs 8-bit ground truth",
        "psnr": "mean over views of 20*log10(1/sqrt(MSE))",
        "ssim": "11x11 Gaussian window, sigma 1.5, C1=0.01^2, C2=0.03^2, mean of the map",
        "lpips_net": LPIPS_NET,
        "lpips_input": "[0,1] without rescaling to [-1,1], as 3DGS metrics.py (lpipsPyTorch)",
        "mb": MB,
    }


def metrics_record(model, views: EvalViews, run: RunInfo, per_image: list[dict], metrics: dict,
                   fps: dict, memory: dict) -> dict[str, Any]:
    """The metrics JSON (without ``timings.eval_seconds`` and ``created``, which the caller
    stamps last): scores, size, timings from ``run.extra``, provenance and input hashes."""
    extra = dict(run.extra or {})
    timings: dict[str, Any] = {}
    for key in TIMING_KEYS:
        v = extra.pop(key, None)
        _set(timings, key, None if v is None else float(v), f"{key} not given by the caller")
    for key in [k for k in extra if k.endswith("_seconds")]:
        timings[key] = extra.pop(key)

    scene = views.scene
    hash_inputs = (list(scene.input_files) + ([run.model_path] if run.model_path is not None else [])
                   + list(run.input_files or []))
    hashes = sha256_files(hash_inputs)
    size = run.size_bytes
    result: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "dataset": run.dataset, "scene": run.scene_name or scene.name, "method": run.method, "variant": run.variant,
        "protocol": _protocol(views),
        "metrics": metrics,
        "per_image": per_image,
    }
    _set(result, "size_bytes", None if size is None else int(size), run.size_reason)
    _set(result, "size_mb", None if size is None else size / MB, run.size_reason)
    result["num_gaussians"] = int(model.num_gaussians)
    result["sh_degree"] = int(model.sh_degree)
    result["timings"] = timings
    result.update(fps)
    result.update(memory)
    result["seed"] = run.seed
    result["versions"] = versions()
    _set(result, "git_commit", git_commit(), "not running from a git work tree (or git missing)")
    result["input_sha256"] = hashes
    if not hashes:
        result["input_sha256_reason"] = "no input files known (scene.input_files empty, no model_path)"
    missing = [p for p, h in hashes.items() if h is None]
    if missing:
        result["input_sha256_missing"] = missing
    if run.model_path is not None:
        result["model_path"] = str(run.model_path)
    result["backend"] = views.backend
    result["device"] = describe_device(views.device)
    result["extra"] = extra
    return result


@torch.no_grad()
def evaluate_model(
    model,
    scene,
    out_dir: str | Path,
    *,
    method: str,
    dataset: str,
    variant: str = "default",
    scene_name: str | None = None,
    backend: str = "auto",
    device: str | torch.device | None = None,
    size_bytes: int | None = None,
    size_reason: str = "size_bytes not given by the caller",
    model_path: str | Path | None = None,
    input_files: list[str | Path] | None = None,
    extra: dict[str, Any] | None = None,
    fps_repeats: int | None = None,
    seed: int = 0,
    lpips_metric: LpipsMetric | None = None,
    save_gt: bool = True,
    progress: bool = True,
    metrics_name: str = "metrics.json",
) -> dict[str, Any]:
    """Render every test view of ``scene`` with ``model``, score it, write
    ``out_dir/renders/NNNNN.png`` (+ ``out_dir/gt/NNNNN.png`` when ``save_gt``, else each
    per-image entry names the source image) and ``out_dir/metrics.json``; return the dict.
    Steps: :func:`render_and_score`, :func:`measure_fps`, :func:`metrics_record`, write.

    ``size_bytes``: bytes of what the decoder reads (PLY or bitstream); the caller knows.
    ``model_path`` / ``input_files``: files hashed into ``input_sha256`` with
    ``scene.input_files`` (directories hash file by file). ``extra``: timings
    (``train_seconds``, ``encode_seconds``, ``decode_seconds``, ...) go to ``timings``; any
    other key is stored under ``extra``. ``fps_repeats``: timed passes over all test views
    after the metric pass (which is the warm-up); default 5 on CUDA, 1 on CPU; 0 skips FPS.
    ``lpips_metric``: pass one :class:`LpipsMetric` to reuse the loaded network across calls.
    """
    run = RunInfo(method, dataset, variant, scene_name or scene.name, seed, size_bytes, size_reason,
                  model_path, input_files, extra)
    t_start = time.perf_counter()
    torch.manual_seed(seed)
    views = EvalViews.of(scene, run.scene_name, backend, device)
    dev = views.device
    model = model.to(dev) if model.device != dev else model
    if lpips_metric is None:
        lpips_metric = LpipsMetric(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    out_dir = Path(out_dir)
    per_image, metrics = render_and_score(model, views, out_dir, lpips_metric=lpips_metric, save_gt=save_gt,
                                          progress=progress, label=f"{dataset}/{run.scene_name} {method}/{variant}")
    fps = measure_fps(model, views, fps_repeats)
    memory = peak_memory(dev, fps["fps_repeats"] > 0, lpips_metric.available)
    result = metrics_record(model, views, run, per_image, metrics, fps, memory)
    result["timings"]["eval_seconds"] = time.perf_counter() - t_start
    result["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_json(out_dir / metrics_name, result)
    return result


def load_metrics(path: str | Path) -> dict[str, Any]:
    """Read a metrics JSON; the error names the file when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable metrics JSON ({e})") from e
    missing = [k for k in ("schema_version", "dataset", "scene", "method", "variant", "metrics") if k not in data]
    if missing:
        raise ValueError(f"{path}: metrics JSON lacks keys {missing}")
    return data


__all__ = ["MB", "REQUIRED_KEYS", "SCHEMA_VERSION", "SPLIT_RULE", "RunInfo", "EvalViews", "evaluate_model",
           "load_metrics", "measure_fps", "metrics_record", "peak_memory", "render_and_score"]
