"""Rate-distortion plots: quality (PSNR, SSIM, LPIPS) against size in MB on a log axis.

One figure per dataset, one panel per metric, one curve per method through its variants
(sorted by size), filled markers for our runs and hollow markers of the same colour for the
paper-reported points. Optional seed spread (``<metric>_std`` columns of
:func:`gs.report.tables.aggregate`) as error bars or bands. Uses matplotlib's object API with
the Agg canvas (no pyplot, no global backend switch), saves PNG and SVG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from gs.report.tables import DATASET_TITLES, aggregate, method_order

METRIC_LABELS = {"psnr": "PSNR [dB] ↑", "ssim": "SSIM ↑", "lpips": "LPIPS (VGG) ↓"}
MARKERS = ["o", "s", "D", "^", "v", "P", "X", "<", ">", "h"]
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f"]


def method_styles(methods: Sequence[str]) -> dict[str, tuple[str, str]]:
    """method -> (colour, marker), stable across datasets for the same set of methods."""
    return {m: (PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]) for i, m in enumerate(method_order(methods))}


def rd_figure(agg: pd.DataFrame, dataset: str, paper: pd.DataFrame | None = None,
              metrics: Sequence[str] = ("psnr", "ssim", "lpips"), spread: str | None = None,
              styles: dict[str, tuple[str, str]] | None = None, annotate: bool = False, title: str | None = None):
    """The RD figure of one dataset (a matplotlib ``Figure``, not saved).

    ``agg``: aggregated rows (:func:`aggregate`; per-run rows are aggregated here).
    ``spread``: None, ``"bars"`` (error bars) or ``"band"`` (shaded band) of ``<metric>_std``
    (seed spread); rows without a std are drawn without one; the subtitle says what the spread
    is. ``annotate``: write the variant name beside each of our points. A metric without a
    single value (ours or the papers', e.g. LPIPS without its weights) gets no panel, and the
    subtitle names it; with no values at all, every panel is drawn (empty).
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if spread not in (None, "bars", "band"):
        raise ValueError(f"spread must be None, 'bars' or 'band', not {spread!r}")
    if "n_scenes" not in agg.columns:
        agg = aggregate(agg)
    ours = agg[agg["dataset"] == dataset]
    pap = paper[paper["dataset"] == dataset] if paper is not None and len(paper) else None
    all_methods = list(ours["method"]) + (list(pap["method"]) if pap is not None else [])
    styles = styles or method_styles(all_methods)
    empty = [m for m in metrics if not _has_values(ours, m) and not (pap is not None and _has_values(pap, m))]
    if len(empty) < len(metrics):
        metrics = [m for m in metrics if m not in empty]
    else:
        empty = []
    notes: list[str] = []

    fig = Figure(figsize=(3.3 * len(metrics), 3.1), dpi=150, layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        for method in method_order(ours["method"]):
            color, marker = styles.get(method, ("#333333", "o"))
            if metric not in ours:
                continue
            rows = ours[(ours["method"] == method) & ours["size_mb"].notna() & ours[metric].notna()]
            rows = rows.sort_values("size_mb")
            if rows.empty:
                continue
            x, y = rows["size_mb"].to_numpy(float), rows[metric].to_numpy(float)
            ax.plot(x, y, color=color, marker=marker, markersize=5, linewidth=1.5, label=method, zorder=3)
            std_col = f"{metric}_std"
            if spread and std_col in rows and rows[std_col].notna().any():
                s = rows[std_col].fillna(0.0).to_numpy(float)
                if spread == "bars" or len(x) == 1:  # a band needs two points
                    notes.append("error bars")
                    ax.errorbar(x, y, yerr=s, fmt="none", ecolor=color, elinewidth=1, capsize=2.5, zorder=2)
                else:
                    notes.append("bands")
                    ax.fill_between(x, y - s, y + s, color=color, alpha=0.18, linewidth=0, zorder=1)
            if annotate:
                for xi, yi, v in zip(x, y, rows["variant"]):
                    ax.annotate(str(v), (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=6,
                                color=color)
        if pap is not None:
            for method in method_order(pap["method"]):
                color, marker = styles.get(method, ("#333333", "o"))
                if metric not in pap:
                    continue
                rows = pap[(pap["method"] == method) & pap["size_mb"].notna() & pap[metric].notna()]
                if rows.empty:
                    continue
                ax.scatter(rows["size_mb"], rows[metric], marker=marker, s=42, facecolors="none",
                           edgecolors=color, linewidths=1.4, zorder=4)
        ax.set_xscale("log")
        # 1-2-5 ticks with plain numbers: RD curves often span less than a decade
        ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("Size [MB], bytes our decoder reads (log, MB = 10$^6$ B)", fontsize=8)
        ax.set_ylabel(METRIC_LABELS.get(metric, metric), fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(True, which="major", color="#dddddd", linewidth=0.6)
        ax.grid(True, which="minor", axis="x", color="#f0f0f0", linewidth=0.4)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    handles = [Line2D([], [], color=styles[m][0], marker=styles[m][1], markersize=5, linewidth=1.5, label=m)
               for m in method_order(all_methods) if m in styles]
    if pap is not None and len(pap):
        handles.append(Line2D([], [], color="#555555", marker="o", markerfacecolor="none", linestyle="none",
                              markersize=6, label="paper-reported (hollow)"))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 7), fontsize=8,
                   frameon=False)
    sub = []
    if notes:
        n_seeds = int(ours["n_seeds"].max()) if "n_seeds" in ours and ours["n_seeds"].notna().any() else 0
        kind = " / ".join(k for k in ("bands", "error bars") if k in notes)
        sub.append(f"{kind}: ± 1 standard deviation over {n_seeds} seeds" if n_seeds > 1
                   else f"{kind}: ± 1 standard deviation over seeds")
    if empty:
        sub.append("no values, not plotted: " + ", ".join(METRIC_LABELS.get(m, m).split(" ")[0] for m in empty))
    head = title or DATASET_TITLES.get(dataset, dataset)
    fig.suptitle(head + ("\n" + "; ".join(sub) if sub else ""), fontsize=10)
    return fig


def _has_values(rows: pd.DataFrame, metric: str) -> bool:
    """Whether ``rows`` hold at least one point of ``metric`` that can be drawn (with a size)."""
    return metric in rows and bool((rows[metric].notna() & rows["size_mb"].notna()).any())


def save_figure(fig, stem: str | Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.svg`` (Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    out = []
    for fmt in formats:
        p = stem.with_name(f"{stem.name}.{fmt}")
        fig.savefig(p, format=fmt, dpi=200 if fmt == "png" else None)
        out.append(p)
    return out


def write_rd_plots(df: pd.DataFrame, out_dir: str | Path, paper: pd.DataFrame | None = None,
                   spread: str | None = None, metrics: Sequence[str] = ("psnr", "ssim", "lpips"),
                   annotate: bool = False) -> list[Path]:
    """``out_dir/rd_<dataset>.png|svg`` for every dataset in ``df`` (per-run or aggregated
    rows). Colours and markers are the same for a method in every dataset."""
    agg = df if "n_scenes" in df.columns else aggregate(df)
    methods = list(agg["method"]) + (list(paper["method"]) if paper is not None else [])
    styles = method_styles(methods)
    out: list[Path] = []
    for dataset in sorted(agg["dataset"].unique()):
        fig = rd_figure(agg, dataset, paper, metrics=metrics, spread=spread, styles=styles, annotate=annotate)
        out += save_figure(fig, Path(out_dir) / f"rd_{dataset}")
    return out


__all__ = ["method_styles", "rd_figure", "save_figure", "write_rd_plots"]
