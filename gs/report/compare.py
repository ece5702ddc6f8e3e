"""How a result row compares: the run it starts from (a codec: the model it compresses; any
other method: the baseline of the same scene and seed), the change against it, whether its
timings are solo figures, and whether it failed (far below its input, or a collapsed training).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from gs.upstream import split_implementation, upstream_id


def _label(method: str, variant: str | None) -> str:
    return method if variant in (None, "", "default") else f"{method} {variant}"


def solo_timings(data: dict[str, Any]) -> bool | None:
    """True when every job behind this row's timings had its GPU alone (training and
    evaluation), False when one of them shared it, None when unknown (CPU rows are solo)."""
    device = data.get("device") or {}
    if device.get("type") not in (None, "cuda"):
        return True
    flags = [(device.get("gpu_sharing") or {}).get("exclusive"),
             ((data.get("extra") or {}).get("train_gpu_sharing") or {}).get("exclusive")]
    if any(f is False for f in flags):
        return False
    return True if all(f is True for f in flags) else None


def collapse_reason(flag: Any) -> str | None:
    """The trainer's collapse flag (train_stats ``collapse``) as one line, or None."""
    if not flag:
        return None
    if isinstance(flag, dict):
        return str(flag.get("reason") or flag)
    return str(flag)


def reference_of(method: str, variant: str) -> tuple[str, str] | None:
    """The run a row is compared with: a codec over a model (``hgsc@gns``, ``p0_b10@15pct``)
    with the model it compresses (``gns``, ``15pct``); any other method with the baseline
    ``3dgs``/``default`` of the same scene and seed, the authors' code (``gns~upstream``) with the
    authors' baseline (``3dgs~upstream``); the baseline itself with nothing."""
    if "@" in method:
        base_method = method.split("@", 1)[1]
        base_variant = variant.split("@", 1)[1] if "@" in variant else "default"
        return base_method, base_variant
    base, impl = split_implementation(method)
    if base == "3dgs":
        return None
    return ("3dgs" if impl == "ours" else upstream_id("3dgs")), "default"


#: a run this far (dB) below the run it is compared with is flagged as failed, not ranked quietly
COLLAPSE_DB = 3.0


def add_reference_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Per row: ``ref_method``/``ref_variant`` (see :func:`reference_of`), ``ref_psnr``,
    ``delta_psnr_ref`` (this PSNR minus the reference's, same scene and seed),
    ``size_ratio_ref`` (reference size / this size), ``ref_iterations``, and ``flag``: a
    short text when the run fell more than :data:`COLLAPSE_DB` dB below its reference or
    its training collapsed, else empty."""
    df = df.copy()
    refs = [reference_of(m, v) for m, v in zip(df["method"], df["variant"])]
    df["ref_method"] = [r[0] if r else None for r in refs]
    df["ref_variant"] = [r[1] if r else None for r in refs]
    seed = df["seed"].fillna(-1)
    key = list(zip(df["dataset"], df["scene"], df["method"], df["variant"], seed))
    lookup = {k: i for i, k in zip(df.index, key)}
    ref_rows = [lookup.get((d, s, rm, rv, sd)) if rm else None
                for d, s, rm, rv, sd in zip(df["dataset"], df["scene"], df["ref_method"], df["ref_variant"], seed)]
    def take(col):
        return [df.at[i, col] if i is not None else float("nan") for i in ref_rows]
    df["ref_psnr"] = pd.to_numeric(pd.Series(take("psnr"), index=df.index), errors="coerce")
    df["delta_psnr_ref"] = df["psnr"] - df["ref_psnr"]
    df["size_ratio_ref"] = pd.to_numeric(pd.Series(take("size_bytes"), index=df.index), errors="coerce") / df["size_bytes"]
    df["ref_iterations"] = pd.to_numeric(pd.Series(take("iterations"), index=df.index), errors="coerce")
    flags = []
    for _, r in df.iterrows():
        parts = []
        if pd.notna(r["delta_psnr_ref"]) and r["delta_psnr_ref"] < -COLLAPSE_DB:
            parts.append(f"{r['delta_psnr_ref']:+.1f} dB vs {_label(r['ref_method'], r['ref_variant'])}")
        if isinstance(r.get("collapse"), str) and r["collapse"]:
            parts.append(f"training collapsed: {r['collapse']}")
        flags.append("; ".join(parts))
    df["flag"] = flags
    return df


__all__ = ["COLLAPSE_DB", "add_reference_columns", "collapse_reason", "reference_of", "solo_timings"]
