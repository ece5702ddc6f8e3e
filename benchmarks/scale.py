"""What the codec-at-scale benchmarks share (hgsc_decode.py, nsvq_codec.py): their command line
and a device synchronisation around timed calls."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def scale_parser(doc: str | None, variant: str) -> argparse.ArgumentParser:
    """``--num`` Gaussians, ``--device``, the codec ``--variant``, ``--repeat`` decodes, ``--out`` folder."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num", type=int, default=1_000_000)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--variant", default=variant)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, required=True)
    return ap


def sync(device: str) -> None:
    """Wait for the GPU, so a timer around a call measures the call."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
