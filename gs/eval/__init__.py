"""Evaluation: image metrics (3DGS conventions), the per-run metrics JSON, provenance."""

from gs.eval.evaluate import MB, REQUIRED_KEYS, SCHEMA_VERSION, evaluate_model, load_metrics
from gs.eval.metrics import LPIPS_NET, LpipsMetric, from_uint8, psnr, ssim, to_uint8
from gs.eval.provenance import describe_device, git_commit, sha256_file, sha256_files, versions

__all__ = [
    "LPIPS_NET", "LpipsMetric", "MB", "REQUIRED_KEYS", "SCHEMA_VERSION", "describe_device",
    "evaluate_model", "from_uint8", "git_commit", "load_metrics", "psnr", "sha256_file",
    "sha256_files", "ssim", "to_uint8", "versions",
]
