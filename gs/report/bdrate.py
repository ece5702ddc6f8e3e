"""Bjøntegaard deltas between rate-distortion curves: BD-rate, BD-PSNR, BD-SSIM.

Which variant
-------------
Bjøntegaard's original method (VCEG-M33, 2001) fits one cubic polynomial through exactly four
points of each curve. This module uses the piecewise cubic variant adopted by later video
coding common test conditions: a shape-preserving piecewise cubic Hermite interpolant (PCHIP,
Fritsch-Carlson; :class:`scipy.interpolate.PchipInterpolator`) through *every* point of a curve.
It passes through the measured points, never overshoots between them (a monotone curve stays
monotone) and accepts any number of points from four on.

- **BD-quality** (BD-PSNR in dB, BD-SSIM in SSIM units): both curves as quality against
  ``log10(rate)``, each interpolated over its own rate range; the mean vertical gap
  ``Q_test - Q_anchor`` over the *overlapping* log-rate interval, integrated exactly (the
  antiderivative of the piecewise cubics). Positive = better quality at the same size.
- **BD-rate** (percent): both curves as ``log10(rate)`` against quality (points sorted by
  quality); the mean horizontal gap ``d`` over the overlapping quality interval, reported as
  ``(10**d - 1) * 100``. Negative = smaller at the same quality. Any rate unit gives the same
  number; GS Bench uses bytes (``size_bytes``).

Curves with fewer than :data:`MIN_POINTS` (4) valid points, curves whose ranges do not
overlap, and curves with two points at the same rate (or, for BD-rate, the same quality) are
**marked**: the result's ``value`` is ``None`` and ``reason`` says why. Nothing is ever
extrapolated: each interpolant is only evaluated inside its own data range.

Tables (:func:`bd_table`, :func:`bd_tables`): a curve is one method (``method`` column, a codec
over a base such as ``hgsc@3dgs`` included) through its variants, as in the RD plots. Per
dataset, each (scene, seed) pair gives one delta against the anchor's curve on the same scene
and seed; the dataset value is the mean over scenes (as the common test conditions average
per-sequence deltas), then mean and standard deviation over seeds. A method missing on a scene
or seed gives no dataset value (never a partial mean). The mean over datasets is computed per
seed from the dataset values, then mean and standard deviation over seeds.

The anchor (``anchor="auto"``, the default, see :func:`resolve_anchor`): per dataset, the
baseline compressed by a post-training codec (``<codec>@<baseline>``, e.g. ``hgsc@3dgs``, the
"baseline codec chain") when it has at least four rate points; else the baseline itself; else
the first curve (baseline first, then registry order) with enough points. The chosen anchor is
written in every row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

MIN_POINTS = 4
SEP = "@"
MEAN_ROW = "mean over datasets"
# measure -> (kind, metric); "rate" = BD-rate of that metric, "quality" = BD-metric
MEASURES = {
    "bd_rate_psnr": ("rate", "psnr"),
    "bd_psnr": ("quality", "psnr"),
    "bd_rate_ssim": ("rate", "ssim"),
    "bd_ssim": ("quality", "ssim"),
}
MEASURE_TITLES = {"bd_rate_psnr": "BD-rate (PSNR) [%]↓", "bd_psnr": "BD-PSNR [dB]↑",
                  "bd_rate_ssim": "BD-rate (SSIM) [%]↓", "bd_ssim": "BD-SSIM↑"}
MEASURE_DECIMALS = {"bd_rate_psnr": 1, "bd_psnr": 2, "bd_rate_ssim": 1, "bd_ssim": 4}


@dataclass(frozen=True)
class BD:
    """One Bjøntegaard delta: ``value`` (None when it cannot be computed) and why not."""

    value: float | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None


# ---------------------------------------------------------------------------- the two deltas
def _points(rate: Iterable[float], quality: Iterable[float], name: str,
            min_points: int) -> tuple[np.ndarray, np.ndarray] | BD:
    r = np.asarray(list(rate), dtype=float)
    q = np.asarray(list(quality), dtype=float)
    if r.shape != q.shape or r.ndim != 1:
        raise ValueError(f"{name} curve: rate and quality need the same length (got {r.shape} and {q.shape})")
    keep = np.isfinite(r) & np.isfinite(q) & (r > 0)
    n = int(keep.sum())
    if n < min_points:
        dropped = f" ({len(r) - n} without a size or metric)" if n < len(r) else ""
        return BD(None, f"{name} curve has {n} rate point{'s' if n != 1 else ''}{dropped}; "
                        f"BD needs at least {min_points} (never extrapolated)")
    return np.log10(r[keep]), q[keep]


def _interp_mean(xa: np.ndarray, ya: np.ndarray, xt: np.ndarray, yt: np.ndarray,
                 what: str) -> float | BD:
    """Mean of ``pchip_t(x) - pchip_a(x)`` over the overlap of the two x ranges."""
    from scipy.interpolate import PchipInterpolator

    for name, x in (("anchor", xa), ("test", xt)):
        if len(np.unique(x)) != len(x):
            return BD(None, f"{name} curve has two points with the same {what}")
    ia, it = np.argsort(xa), np.argsort(xt)
    xa, ya, xt, yt = xa[ia], ya[ia], xt[it], yt[it]
    lo, hi = max(xa[0], xt[0]), min(xa[-1], xt[-1])
    if not hi > lo:
        return BD(None, f"the curves' {what} ranges do not overlap")
    pa, pt = PchipInterpolator(xa, ya, extrapolate=False), PchipInterpolator(xt, yt, extrapolate=False)
    return float((pt.integrate(lo, hi) - pa.integrate(lo, hi)) / (hi - lo))


def bd_quality(anchor_rate: Sequence[float], anchor_quality: Sequence[float], test_rate: Sequence[float],
               test_quality: Sequence[float], min_points: int = MIN_POINTS) -> BD:
    """BD-quality of the test curve against the anchor: the mean quality gain at equal rate
    (BD-PSNR in dB for PSNR, BD-SSIM for SSIM). See the module docstring for the variant."""
    a = _points(anchor_rate, anchor_quality, "anchor", min_points)
    t = _points(test_rate, test_quality, "test", min_points)
    for c in (a, t):
        if isinstance(c, BD):
            return c
    v = _interp_mean(a[0], a[1], t[0], t[1], "rate")
    return v if isinstance(v, BD) else BD(v)


def bd_rate(anchor_rate: Sequence[float], anchor_quality: Sequence[float], test_rate: Sequence[float],
            test_quality: Sequence[float], min_points: int = MIN_POINTS) -> BD:
    """BD-rate of the test curve against the anchor in percent: the mean rate change at equal
    quality (negative = smaller). See the module docstring for the variant."""
    a = _points(anchor_rate, anchor_quality, "anchor", min_points)
    t = _points(test_rate, test_quality, "test", min_points)
    for c in (a, t):
        if isinstance(c, BD):
            return c
    v = _interp_mean(a[1], a[0], t[1], t[0], "quality")  # log-rate as a function of quality
    return v if isinstance(v, BD) else BD((10.0 ** v - 1.0) * 100.0)


def bd_psnr(anchor_rate, anchor_psnr, test_rate, test_psnr, min_points: int = MIN_POINTS) -> BD:
    """BD-PSNR in dB (:func:`bd_quality` of PSNR curves)."""
    return bd_quality(anchor_rate, anchor_psnr, test_rate, test_psnr, min_points)


def bd_ssim(anchor_rate, anchor_ssim, test_rate, test_ssim, min_points: int = MIN_POINTS) -> BD:
    """BD-SSIM (:func:`bd_quality` of SSIM curves)."""
    return bd_quality(anchor_rate, anchor_ssim, test_rate, test_ssim, min_points)


# ---------------------------------------------------------------------------- anchors
def _baseline() -> str:
    try:
        from gs.methods.registry import METHODS

        return next(m for m, spec in METHODS.items() if spec.kind == "train")  # as gs.pipeline.baseline_method
    except Exception:  # the registry is optional for reporting
        return "3dgs"


def _order(methods: Iterable[str]) -> list[str]:
    from gs.report.tables import method_order

    return method_order(methods)


def _n_points(d: pd.DataFrame, method: str, metric: str = "psnr") -> int:
    """Rate points of a curve: the fewest valid variants over its (scene, seed) pairs."""
    rows = d[(d["method"] == method) & d["size_bytes"].notna() & d[metric].notna()]
    if rows.empty:
        return 0
    return int(rows.groupby(["scene", "_seed"])["variant"].nunique().min())


def _prepared(df: pd.DataFrame) -> pd.DataFrame:
    d = df.copy()
    d["_seed"] = d["seed"].fillna(-1).astype(int) if "seed" in d else -1
    for c in ("size_bytes", "psnr", "ssim"):
        if c in d:
            d[c] = pd.to_numeric(d[c], errors="coerce")
    return d


def resolve_anchor(df: pd.DataFrame, dataset: str, anchor: str | Mapping[str, str] = "auto",
                   baseline: str | None = None, min_points: int = MIN_POINTS) -> tuple[str | None, str]:
    """(anchor method or None, how it was chosen) for one dataset of per-run rows.

    ``anchor``: a method id (``"hgsc@3dgs"``, ``"gns"``), ``"auto"``, or a mapping dataset ->
    either of those (missing datasets: ``"auto"``)."""
    if isinstance(anchor, Mapping):
        anchor = anchor.get(dataset, "auto")
    d = df if "_seed" in df else _prepared(df)
    d = d[d["dataset"] == dataset]
    methods = _order(d["method"].unique())
    if anchor != "auto":
        if anchor not in methods:
            return None, f"anchor '{anchor}' has no runs on {dataset}"
        return anchor, "configured"
    base = baseline or _baseline()
    chains = [m for m in methods if SEP in m and m.split(SEP, 1)[1] == base]
    for m in chains + [base] + methods:
        if m in methods and _n_points(d, m) >= min_points:
            how = ("the baseline codec chain" if m in chains else "the baseline" if m == base
                   else f"the first curve with {min_points}+ rate points (no baseline codec chain has them)")
            return m, f"auto: {how}"
    return None, f"auto: no curve on {dataset} has {min_points} or more rate points"


# ---------------------------------------------------------------------------- tables
_FUNCS = {"rate": bd_rate, "quality": bd_quality}


def _curve(d: pd.DataFrame, method: str, scene: str, seed: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    rows = d[(d["method"] == method) & (d["scene"] == scene) & (d["_seed"] == seed)]
    per_variant = rows.groupby("variant")[["size_bytes", metric]].mean()
    return per_variant["size_bytes"].to_numpy(float), per_variant[metric].to_numpy(float)


def _per_seed(d: pd.DataFrame, method: str, anchor: str | None, measure: str,
              min_points: int) -> tuple[dict[int, float | None], str | None]:
    """seed -> dataset value (mean over scenes) or None; the first reason a value is missing."""
    kind, metric = MEASURES[measure]
    seeds = sorted(d["_seed"].unique())
    scenes = sorted(d["scene"].unique())
    out: dict[int, float | None] = {}
    reason: str | None = None
    for seed in seeds:
        vals: list[float] = []
        for scene in scenes:
            if anchor is None:
                why = "no anchor"
            else:
                ar, aq = _curve(d, anchor, scene, seed, metric)
                tr, tq = _curve(d, method, scene, seed, metric)
                if len(tr) == 0:
                    why = f"no runs on scene {scene}" + (f" seed {seed}" if len(seeds) > 1 else "")
                elif len(ar) == 0:
                    why = f"the anchor has no runs on scene {scene}" + (f" seed {seed}" if len(seeds) > 1 else "")
                else:
                    r = _FUNCS[kind](ar, aq, tr, tq, min_points)
                    if r.ok:
                        vals.append(r.value)
                        continue
                    why = r.reason
            reason = reason or why
            break
        out[seed] = float(np.mean(vals)) if len(vals) == len(scenes) else None
    return out, reason


def _summarise(per_seed: Mapping[int, float | None]) -> tuple[float, float]:
    """(mean, std over seeds); NaN mean when any seed is missing, NaN std with one seed."""
    vals = list(per_seed.values())
    if not vals or any(v is None for v in vals):
        return math.nan, math.nan
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan


PerSeed = dict[str, dict[str, dict[int, float | None]]]  # method -> measure -> seed -> value


def _dataset_rows(d: pd.DataFrame, dataset: str, anchor: str | Mapping[str, str], min_points: int,
                  measures: Sequence[str]) -> tuple[list[dict[str, Any]], PerSeed]:
    dd = d[d["dataset"] == dataset]
    anc, how = resolve_anchor(dd, dataset, anchor, min_points=min_points)
    rows: list[dict[str, Any]] = []
    per_seed_all: PerSeed = {}
    for method in _order(dd["method"].unique()):
        row: dict[str, Any] = {"dataset": dataset, "method": method, "anchor": anc or "", "anchor_choice": how,
                               "is_anchor": method == anc, "n_points": _n_points(dd, method),
                               "n_scenes": int(dd.loc[dd["method"] == method, "scene"].nunique()),
                               "n_seeds": int(dd.loc[dd["method"] == method, "_seed"].nunique())}
        reasons, per_seed_all[method] = [], {}
        if anc is None and row["n_points"] < min_points:
            n = row["n_points"]
            reasons.append(f"{n} rate point{'s' if n != 1 else ''}; BD needs at least {min_points} "
                           "(never extrapolated)")
        for m in measures:
            ps, why = _per_seed(dd, method, anc, m, min_points)
            per_seed_all[method][m] = ps
            row[m], row[f"{m}_std"] = _summarise(ps)
            if why and why not in reasons:
                reasons.append(why)
        row["note"] = "; ".join(reasons) if reasons else ("anchor" if method == anc else "")
        rows.append(row)
    return rows, per_seed_all


COLUMNS = ["dataset", "method", "anchor", "anchor_choice", "is_anchor", "n_points", "n_scenes", "n_seeds",
           *[c for m in MEASURES for c in (m, f"{m}_std")], "note"]


def bd_table(df: pd.DataFrame, dataset: str, anchor: str | Mapping[str, str] = "auto",
             min_points: int = MIN_POINTS, measures: Sequence[str] = tuple(MEASURES)) -> pd.DataFrame:
    """One dataset: a row per method (curve) with BD-rate / BD-PSNR / BD-SSIM against the
    anchor (mean over seeds, ``<measure>_std`` the standard deviation over seeds), the number
    of rate points, and a ``note`` saying why a value is missing. ``df``: per-run rows
    (:func:`gs.report.tables.collect_results` or ``results.csv``)."""
    rows, _ = _dataset_rows(_prepared(df), dataset, anchor, min_points, measures)
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def bd_tables(df: pd.DataFrame, anchor: str | Mapping[str, str] = "auto", min_points: int = MIN_POINTS,
              measures: Sequence[str] = tuple(MEASURES)) -> pd.DataFrame:
    """Every dataset's :func:`bd_table` stacked, then rows with ``dataset ==``
    :data:`MEAN_ROW`: per method, the mean over datasets (computed per seed, then mean and
    standard deviation over seeds; missing on any dataset = missing)."""
    d = _prepared(df)
    datasets = sorted(d["dataset"].unique())
    rows, per_seed = [], {}
    for ds in datasets:
        r, ps = _dataset_rows(d, ds, anchor, min_points, measures)
        rows += r
        per_seed[ds] = ps
    anchors = list(dict.fromkeys(r["anchor"] or "none" for r in rows))
    notes = {(r["dataset"], r["method"]): r["note"] for r in rows}
    for method in _order(d["method"].unique()):
        row: dict[str, Any] = {"dataset": MEAN_ROW, "method": method, "anchor": " / ".join(anchors),
                               "anchor_choice": "per dataset", "is_anchor": False,
                               "n_points": min((r["n_points"] for r in rows if r["method"] == method), default=0),
                               "n_scenes": sum(r["n_scenes"] for r in rows if r["method"] == method),
                               "n_seeds": max((r["n_seeds"] for r in rows if r["method"] == method), default=0)}
        missing = [ds for ds in datasets if method not in per_seed[ds]]
        reasons = [f"no runs on {', '.join(missing)}"] if missing else []
        for m in measures:
            if missing:
                row[m], row[f"{m}_std"] = math.nan, math.nan
                continue
            seeds = sorted({s for ds in datasets for s in per_seed[ds][method][m]})
            combined: dict[int, float | None] = {}
            for s in seeds:
                vals = [per_seed[ds][method][m].get(s) for ds in datasets]
                combined[s] = None if any(v is None for v in vals) else float(np.mean(vals))
            row[m], row[f"{m}_std"] = _summarise(combined)
            if any(v is None for v in combined.values()):
                for ds in datasets:
                    ps = per_seed[ds][method][m]
                    if any(v is None for v in ps.values()) or set(ps) != set(seeds):
                        why = f"{ds}: {notes.get((ds, method)) or 'missing seeds'}"
                        if why not in reasons:
                            reasons.append(why)
        row["is_anchor"] = all(r["is_anchor"] for r in rows if r["method"] == method) and not missing
        row["note"] = "; ".join(reasons) if reasons else ("anchor" if row["is_anchor"] else "")
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS) if rows else pd.DataFrame(columns=COLUMNS)


# ---------------------------------------------------------------------------- formatting
def _fmt(measure: str, v: Any, s: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    dec = MEASURE_DECIMALS.get(measure, 3)
    out = f"{float(v):+.{dec}f}"
    if s is not None and not (isinstance(s, float) and math.isnan(s)):
        out += f" ± {float(s):.{dec}f}"
    return out


def bd_markdown(table: pd.DataFrame, dataset: str, title: str | None = None,
                measures: Sequence[str] = tuple(MEASURES)) -> str:
    """A Markdown table of one dataset's rows of ``table`` (:func:`bd_table` or
    :func:`bd_tables`; ``dataset`` may be :data:`MEAN_ROW`), values as ``mean ± std``."""
    rows = table[table["dataset"] == dataset]
    head = "| Method | Points | " + " | ".join(MEASURE_TITLES.get(m, m) for m in measures) + " | Note |"
    sep = "|---|---:|" + "|".join("---:" for _ in measures) + "|---|"
    body = []
    for _, r in rows.iterrows():
        label = f"{r['method']} (anchor)" if bool(r["is_anchor"]) else str(r["method"])
        cells = [_fmt(m, r[m], r.get(f"{m}_std")) for m in measures]
        note = "" if r["note"] == "anchor" else str(r["note"] or "")
        body.append(f"| {label} | {int(r['n_points'])} | " + " | ".join(cells) + f" | {note.replace('|', '/')} |")
    anchors = ", ".join(dict.fromkeys(str(a) for a in rows["anchor"] if a)) or "none"
    choice = ", ".join(dict.fromkeys(str(a) for a in rows["anchor_choice"] if a))
    seeds = int(rows["n_seeds"].max()) if len(rows) else 0
    notes = [f"Anchor: {anchors} ({choice}). Bjøntegaard deltas with piecewise cubic (PCHIP) interpolation "
             f"of quality vs log10(size in bytes) over the overlapping range (BD-rate: log size vs quality); "
             f"curves with fewer than {MIN_POINTS} rate points are not computed (–), never extrapolated.",
             "BD-rate < 0: smaller at equal quality; BD-PSNR / BD-SSIM > 0: better quality at equal size. "
             "Dataset value = mean over scenes" + (f"; mean ± standard deviation over {seeds} seeds." if seeds > 1
                                                   else ".")]
    name = title or (dataset if dataset != MEAN_ROW else "Mean over datasets")
    return "\n".join([f"### {name}: Bjøntegaard deltas", "", head, sep, *body, "", *[f"{n}  " for n in notes]]) + "\n"


__all__ = ["BD", "MEAN_ROW", "MEASURES", "MIN_POINTS", "bd_markdown", "bd_psnr", "bd_quality", "bd_rate", "bd_ssim",
           "bd_table", "bd_tables", "resolve_anchor"]
