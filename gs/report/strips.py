"""Image comparison strips: ground truth | baseline | each method, for a few test views.

Each tile carries a caption bar with the method label and its PSNR on that view. Inputs are
evaluation folders written by :func:`gs.eval.evaluate.evaluate_model` (their metrics.json
names the render and ground-truth PNG of every view), so strips need no re-rendering.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CAPTION_BG = (255, 255, 255)
CAPTION_FG = (20, 20, 20)
GAP = 4


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _as_image(img) -> Image.Image:
    if isinstance(img, Image.Image):
        return img.convert("RGB")
    if isinstance(img, (str, Path)):
        return Image.open(img).convert("RGB")
    arr = np.asarray(img.detach().cpu() if hasattr(img, "detach") else img)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    return Image.fromarray(arr[..., :3] if arr.ndim == 3 else arr).convert("RGB")


def comparison_strip(tiles: Sequence[tuple[str, object, float | None]], tile_height: int | None = None,
                     caption_height: int | None = None) -> Image.Image:
    """A horizontal strip of ``(label, image, psnr_or_None)`` tiles (images: PIL, path, HWC
    uint8/float array or tensor), each resized to ``tile_height`` (default: the first tile's
    height), with a caption bar "label" / "PSNR xx.xx dB" above it."""
    if not tiles:
        raise ValueError("comparison_strip needs at least one tile")
    imgs = [_as_image(t[1]) for t in tiles]
    h = tile_height or imgs[0].height
    imgs = [im if im.height == h else im.resize((max(1, round(im.width * h / im.height)), h), Image.LANCZOS)
            for im in imgs]
    cap = caption_height or max(18, min(40, h // 8))
    font = _font(max(8, int(cap * 0.42)))
    width = sum(im.width for im in imgs) + GAP * (len(imgs) - 1)
    strip = Image.new("RGB", (width, h + cap), CAPTION_BG)
    draw = ImageDraw.Draw(strip)
    x = 0
    for (label, _, value), im in zip(tiles, imgs):
        strip.paste(im, (x, cap))
        text = label if value is None else f"{label}  {value:.2f} dB"
        draw.text((x + im.width / 2, cap / 2), text, fill=CAPTION_FG, font=font, anchor="mm")
        x += im.width + GAP
    return strip


def _load_eval(eval_dir: Path) -> dict:
    p = eval_dir / "metrics.json" if eval_dir.is_dir() else eval_dir
    data = json.loads(p.read_text())
    data["_dir"] = p.parent
    return data


def write_strips(runs: Sequence[tuple[str, str | Path]], out_dir: str | Path, views: Sequence[int] | None = None,
                 n_views: int = 3, tile_height: int | None = 360, prefix: str = "strip") -> list[Path]:
    """For each chosen test view: ``out_dir/<prefix>_<view>.png`` = GT | runs[0] (the
    baseline) | runs[1:] ... ``runs``: (label, evaluation folder or its metrics.json). The
    ground truth comes from the first run that saved it. ``views``: view indices; default
    ``n_views`` evenly spaced ones. ``tile_height``: resize tiles (None = native)."""
    if not runs:
        raise ValueError("write_strips needs at least one run")
    evals = [(label, _load_eval(Path(path))) for label, path in runs]
    counts = {len(e["per_image"]) for _, e in evals}
    if len(counts) != 1:
        raise ValueError(f"runs have different numbers of test views: {sorted(counts)}")
    n = counts.pop()
    if views is None:
        views = sorted({int(round(i)) for i in np.linspace(0, n - 1, min(n_views, n))})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for v in views:
        if not 0 <= v < n:
            raise ValueError(f"view {v} out of range (the runs have {n} test views)")
        gt = None
        for _, e in evals:
            g = e["per_image"][v].get("gt")
            if g:
                gp = Path(g) if Path(g).is_absolute() else e["_dir"] / g
                if gp.is_file():
                    gt = gp
                    break
        tiles: list[tuple[str, object, float | None]] = []
        if gt is not None:
            tiles.append(("ground truth", gt, None))
        for label, e in evals:
            item = e["per_image"][v]
            tiles.append((label, e["_dir"] / item["render"], item.get("psnr")))
        p = out_dir / f"{prefix}_{v:03d}.png"
        comparison_strip(tiles, tile_height=tile_height).save(p)
        written.append(p)
    return written


__all__ = ["comparison_strip", "write_strips"]
