"""Result tables computed from the metrics JSON files (nothing typed by hand).

- :func:`collect_results`: one row per metrics JSON (dataset, scene, method, variant, seed).
- :func:`aggregate`: per (dataset, method, variant), the mean over scenes of the per-scene
  means over seeds (the 3DGS "dataset number"), plus the spread over seeds.
- :func:`write_survey_csvs`: the 3DGS.zip survey schema
  (``Submethod,PSNR,SSIM,LPIPS,Size [Bytes],#Gaussians``), one CSV per dataset (mean over
  scenes) and one per scene, laid out as the survey expects (``<Dataset>.csv``,
  ``<Dataset>/<scene>.csv``).
- :func:`read_survey_csv`: reads a survey CSV back and checks its header and units.
- :func:`markdown_table` / :func:`latex_table`: paper-style tables (mean ± std over seeds), best **bold** and
  second-best underlined per column among our rows, paper-reported rows "(paper)" beside ours
  with a gap column (our PSNR minus the paper's).
- :func:`load_paper_results`: the paper numbers from ``gs/methods/paper_results/*.yaml``
  (schema in that folder's README.md).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from gs.report.compare import add_reference_columns, collapse_reason, solo_timings
from gs.upstream import split_implementation

MB = 1_000_000
SURVEY_HEADER = ["Submethod", "PSNR", "SSIM", "LPIPS", "Size [Bytes]", "#Gaussians"]
# Our dataset ids -> the folder / file names of the 3DGS.zip survey.
SURVEY_DATASET_NAMES = {
    "mipnerf360": "MipNeRF360",
    "tandt": "TanksAndTemples",
    "deepblending": "DeepBlending",
    "nerf_synthetic": "SyntheticNeRF",
    "blender": "SyntheticNeRF",
}
DATASET_TITLES = {
    "mipnerf360": "Mip-NeRF 360",
    "tandt": "Tanks&Temples",
    "deepblending": "Deep Blending",
    "nerf_synthetic": "NeRF-Synthetic",
    "blender": "NeRF-Synthetic",
}
#: per-row comparisons with the run a row is compared with (see add_reference_columns)
REFERENCE_COLUMNS = ["delta_psnr_ref", "size_ratio_ref", "iterations", "ref_iterations"]
METRIC_COLUMNS = ["psnr", "ssim", "lpips", "size_bytes", "size_mb", "size_bytes_paper_format", "size_mb_paper",
                  "num_gaussians", "train_seconds",
                  "encode_seconds", "decode_seconds", "fps", "peak_gpu_memory_bytes"]
# column -> True when higher is better; the columns a table ranks (best bold, second underlined)
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False, "size_mb": False, "num_gaussians": False,
                    "fps": True, "train_minutes": False}
DEFAULT_RANKED = ("psnr", "ssim", "lpips", "size_mb", "num_gaussians")
# displayed decimals (ranking uses the displayed value, so equal-looking numbers tie)
DECIMALS = {"psnr": 2, "ssim": 3, "lpips": 3, "train_minutes": 1, "fps": 0, "gap_psnr": 2, "delta_psnr_ref": 2,
            "size_ratio_ref": 1}
COLUMN_TITLES = {"psnr": "PSNR↑", "ssim": "SSIM↑", "lpips": "LPIPS↓", "size_mb": "Size [MB]↓",
                 "size_mb_paper": "Size, paper layout [MB]",
                 "num_gaussians": "#Gaussians↓", "train_minutes": "Train [min]", "fps": "FPS",
                 "gap_psnr": "ΔPSNR vs paper", "delta_psnr_ref": "ΔPSNR vs input", "size_ratio_ref": "× smaller"}
LATEX_TITLES = {"psnr": r"PSNR$\uparrow$", "ssim": r"SSIM$\uparrow$", "lpips": r"LPIPS$\downarrow$",
                "size_mb": r"Size [MB]$\downarrow$", "size_mb_paper": "Size, paper layout [MB]", "num_gaussians": r"\#Gaussians$\downarrow$",
                "train_minutes": "Train [min]", "fps": "FPS", "gap_psnr": r"$\Delta$PSNR vs paper",
                "delta_psnr_ref": r"$\Delta$PSNR vs input", "size_ratio_ref": r"$\times$ smaller"}
#: columns whose value is a timing: marked † when measured on a shared GPU
SHARED_GPU_COLUMNS = ("train_minutes", "fps")
TABLE_COLUMNS = ("psnr", "ssim", "lpips", "size_mb", "size_mb_paper", "num_gaussians", "delta_psnr_ref", "size_ratio_ref",
                 "train_minutes", "fps", "gap_psnr")


# ---------------------------------------------------------------------------- labels / order
def submethod_label(method: str, variant: str | None) -> str:
    """"3dgs" for the default variant, else "gns 15pct" (method, space, variant); the authors'
    code (``gns~upstream``) is "gns 15pct (upstream)"."""
    method, impl = split_implementation(method)
    label = method if variant in (None, "", "default") else f"{method} {variant}"
    return label if impl == "ours" else f"{label} ({impl})"


def method_order(methods: Iterable[str]) -> list[str]:
    """The baseline first, then the registry's order, then anything else alphabetically."""
    try:
        from gs.methods.registry import list_methods

        known = list_methods()
    except Exception:  # the registry is optional for reporting
        known = []
    methods = list(dict.fromkeys(methods))
    rank = {m: i for i, m in enumerate(["3dgs"] + [k for k in known if k != "3dgs"])}

    def key(m: str) -> tuple[int, str, str]:  # the authors' code right after ours
        base, impl = split_implementation(m)
        return rank.get(base, len(rank)), base if base in rank else m, impl != "ours"

    return sorted(methods, key=key)


# ---------------------------------------------------------------------------- collect
def _flat(data: dict[str, Any], path: Path) -> dict[str, Any]:
    metrics = data.get("metrics", {})
    timings = data.get("timings", {})
    extra = data.get("extra") or {}
    row: dict[str, Any] = {
        "dataset": data["dataset"], "scene": data["scene"], "method": data["method"],
        "variant": data["variant"], "seed": data.get("seed"),
        "implementation": data.get("implementation") or extra.get("implementation") or "ours",
        "psnr": metrics.get("psnr"), "ssim": metrics.get("ssim"), "lpips": metrics.get("lpips"),
        "size_bytes": data.get("size_bytes"), "size_mb": data.get("size_mb"),
        # the size in the paper's own storage layout, where it differs from size_bytes
        "size_bytes_paper_format": extra.get("size_bytes_paper_format"),
        "num_gaussians": data.get("num_gaussians"),
        "train_seconds": timings.get("train_seconds", data.get("train_seconds")),
        "encode_seconds": timings.get("encode_seconds"), "decode_seconds": timings.get("decode_seconds"),
        "eval_seconds": timings.get("eval_seconds"),
        "fps": data.get("fps"), "fps_device": data.get("fps_device"),
        "peak_gpu_memory_bytes": data.get("peak_gpu_memory_bytes"),
        "train_peak_memory_bytes": extra.get("peak_memory_bytes"),
        "num_test_views": data.get("protocol", {}).get("num_test_views"),
        "resolution": data.get("protocol", {}).get("resolution"),
        "lpips_net": data.get("protocol", {}).get("lpips_net"),
        "backend": data.get("backend"), "device": (data.get("device") or {}).get("name"),
        "iterations": extra.get("iterations"),
        "solo_timings": solo_timings(data),
        "collapse": collapse_reason(extra.get("collapse")),
        "git_commit": data.get("git_commit"), "schema_version": data.get("schema_version"),
        "path": str(path),
    }
    if row["size_mb"] is None and row["size_bytes"] is not None:
        row["size_mb"] = row["size_bytes"] / MB
    pf = row["size_bytes_paper_format"]
    row["size_mb_paper"] = pf / MB if pf is not None else None
    return row


def collect_results(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per metrics JSON. Missing values (JSON null) become NaN. An unreadable file
    raises an error that names it."""
    from gs.eval.evaluate import load_metrics

    rows = [_flat(load_metrics(p), Path(p)) for p in paths]
    cols = ["dataset", "scene", "method", "variant", "implementation", "seed", "psnr", "ssim", "lpips", "size_bytes",
            "size_mb", "size_bytes_paper_format", "size_mb_paper", "num_gaussians", "train_seconds", "encode_seconds",
            "decode_seconds", "eval_seconds",
            "fps", "fps_device", "peak_gpu_memory_bytes", "train_peak_memory_bytes", "num_test_views", "resolution", "lpips_net",
            "backend", "device", "iterations", "solo_timings", "collapse", "git_commit", "schema_version",
            "path"]
    df = pd.DataFrame(rows, columns=cols)
    for c in METRIC_COLUMNS + ["eval_seconds", "iterations"]:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return add_reference_columns(df)


def write_results_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """All per-run rows, sorted, as one CSV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.sort_values(["dataset", "scene", "method", "variant", "seed"], na_position="last").to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------- aggregate
def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method, variant): mean over scenes of the per-scene mean over seeds,
    ``n_scenes`` / ``n_scenes_dataset`` (scenes of that dataset anywhere in ``df``),
    ``n_seeds``, and ``<metric>_std``: the standard deviation over seeds of the dataset mean
    (NaN with one seed). A metric missing for any scene gives NaN (never a partial mean)."""
    value_cols = [c for c in METRIC_COLUMNS + REFERENCE_COLUMNS if c in df.columns]
    keys = ["dataset", "method", "variant"]
    if df.empty:
        return pd.DataFrame(columns=keys + value_cols + ["n_scenes", "n_scenes_dataset", "n_seeds"])
    d = df.copy()
    d["seed"] = d["seed"].fillna(-1) if "seed" in d else -1
    per_scene = d.groupby(keys + ["scene"], sort=False)[value_cols].mean()
    mean = per_scene.groupby(level=keys, sort=False).agg(lambda s: s.mean(skipna=False))
    mean["n_scenes"] = per_scene.groupby(level=keys, sort=False).size()
    per_seed = d.groupby(keys + ["seed"], sort=False)[value_cols].agg(lambda s: s.mean(skipna=False))
    std = per_seed.groupby(level=keys, sort=False).std(ddof=1)
    mean = mean.join(std.add_suffix("_std"))
    mean["n_seeds"] = d.groupby(keys, sort=False)["seed"].nunique()
    out = mean.reset_index()
    out["n_scenes_dataset"] = out["dataset"].map(d.groupby("dataset")["scene"].nunique())
    out["train_minutes"] = out["train_seconds"] / 60.0
    if "train_seconds_std" in out:
        out["train_minutes_std"] = out["train_seconds_std"] / 60.0
    out["submethod"] = [submethod_label(m, v) for m, v in zip(out["method"], out["variant"])]
    def text(t: Any) -> bool:  # a CSV read back gives NaN for an empty cell
        return isinstance(t, str) and bool(t)

    texts = {"flag": lambda s: "; ".join(f"{sc}: {t}" for sc, t in s if text(t)),
             "ref_method": lambda s: next((t for _, t in s if text(t)), None),
             "ref_variant": lambda s: next((t for _, t in s if text(t)), None)}
    for col, join in texts.items():
        if col in d:
            grouped = {k: join(list(zip(g["scene"], g[col]))) for k, g in d.groupby(keys, sort=False)}
            out[col] = [grouped.get(k) for k in zip(out["dataset"], out["method"], out["variant"])]
    if "solo_timings" in d:
        shared = {k: bool((g["solo_timings"] == False).any()) for k, g in d.groupby(keys, sort=False)}  # noqa: E712
        out["shared_gpu"] = [shared.get(k, False) for k in zip(out["dataset"], out["method"], out["variant"])]
    order = {m: i for i, m in enumerate(method_order(out["method"]))}
    out["_o"] = out["method"].map(order)
    out = out.sort_values(["dataset", "_o", "size_mb", "variant"], na_position="last").drop(columns="_o")
    return out.reset_index(drop=True)


# ---------------------------------------------------------------------------- survey CSVs
def survey_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with submethod/psnr/ssim/lpips/size_bytes/num_gaussians -> the survey's columns
    (integers for size and count; missing values stay empty)."""
    label = rows["submethod"] if "submethod" in rows else [
        submethod_label(m, v) for m, v in zip(rows["method"], rows["variant"])]
    out = pd.DataFrame({
        "Submethod": list(label),
        "PSNR": rows["psnr"].to_numpy(), "SSIM": rows["ssim"].to_numpy(), "LPIPS": rows["lpips"].to_numpy(),
        "Size [Bytes]": pd.array([None if pd.isna(x) else int(round(x)) for x in rows["size_bytes"]], dtype="Int64"),
        "#Gaussians": pd.array([None if pd.isna(x) else int(round(x)) for x in rows["num_gaussians"]], dtype="Int64"),
    })
    return out[SURVEY_HEADER]


def read_survey_csv(path: str | Path) -> pd.DataFrame:
    """Read a survey CSV back the way the 3DGS.zip survey reads contributions, checking it on
    the way: the exact header :data:`SURVEY_HEADER`, ``Submethod`` text, PSNR / SSIM / LPIPS
    numbers, ``Size [Bytes]`` and ``#Gaussians`` non-negative integers written without a
    decimal point (bytes, not MB; counts, not millions); empty cells are missing values.
    Returns the table (sizes and counts as pandas ``Int64``); errors name the file, the row
    and the column."""
    import csv

    path = Path(path)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != SURVEY_HEADER:
        raise ValueError(f"{path}: header must be {','.join(SURVEY_HEADER)} (got {rows[0] if rows else 'nothing'})")
    out: dict[str, list[Any]] = {c: [] for c in SURVEY_HEADER}
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(SURVEY_HEADER):
            raise ValueError(f"{path}: line {i} has {len(row)} cells, the header {len(SURVEY_HEADER)}")
        for col, cell in zip(SURVEY_HEADER, row):
            cell = cell.strip()
            if col == "Submethod":
                out[col].append(cell)
            elif cell == "":
                out[col].append(None)
            elif col in ("Size [Bytes]", "#Gaussians"):
                if not cell.isdigit():
                    raise ValueError(f"{path}: line {i}, '{col}' must be a whole number (bytes / a count), "
                                     f"got '{cell}'")
                out[col].append(int(cell))
            else:
                try:
                    v = float(cell)
                except ValueError:
                    raise ValueError(f"{path}: line {i}, '{col}' is not a number: '{cell}'") from None
                if not math.isfinite(v):
                    raise ValueError(f"{path}: line {i}, '{col}' is not finite: '{cell}'")
                out[col].append(v)
    ints = ("Size [Bytes]", "#Gaussians")
    return pd.DataFrame({c: pd.array(v, dtype="Int64" if c in ints else "string" if c == "Submethod" else "Float64")
                         for c, v in out.items()})[SURVEY_HEADER]


def write_survey_csvs(df: pd.DataFrame, out_dir: str | Path, per_scene: bool = True) -> list[Path]:
    """For each dataset: ``out_dir/<SurveyName>.csv`` (mean over scenes, one row per
    method + variant) and, with ``per_scene``, ``out_dir/<SurveyName>/<scene>.csv``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    agg = aggregate(df)
    for dataset, rows in agg.groupby("dataset", sort=True):
        name = SURVEY_DATASET_NAMES.get(dataset, dataset)
        p = out_dir / f"{name}.csv"
        survey_table(rows).to_csv(p, index=False)
        written.append(p)
        if per_scene:
            for scene, srows in df[df["dataset"] == dataset].groupby("scene", sort=True):
                s = srows.groupby(["method", "variant"], sort=False)[
                    ["psnr", "ssim", "lpips", "size_bytes", "num_gaussians"]].mean().reset_index()
                order = {m: i for i, m in enumerate(method_order(s["method"]))}
                s = s.assign(_o=s["method"].map(order)).sort_values(["_o", "size_bytes"]).drop(columns="_o")
                q = out_dir / name / f"{scene}.csv"
                q.parent.mkdir(parents=True, exist_ok=True)
                survey_table(s).to_csv(q, index=False)
                written.append(q)
    return written


# ---------------------------------------------------------------------------- paper numbers
PAPER_COLUMNS = ["method", "variant", "dataset", "label", "psnr", "ssim", "lpips", "size_bytes", "size_mb",
                 "num_gaussians", "train_minutes", "fps", "source", "file"]


def load_paper_results(directory: str | Path | None = None) -> pd.DataFrame:
    """All ``*.yaml`` files of ``directory`` (default ``gs/methods/paper_results``) as one
    DataFrame with :data:`PAPER_COLUMNS`. Schema: ``paper_results/README.md``. Errors name the
    file and the entry."""
    import yaml

    directory = Path(directory) if directory is not None else Path(__file__).resolve().parents[1] / "methods" / "paper_results"
    rows = []
    for f in sorted(directory.glob("*.yaml")):
        try:
            doc = yaml.safe_load(f.read_text())
        except yaml.YAMLError as e:
            raise ValueError(f"{f}: not valid YAML ({e})") from e
        if not isinstance(doc, dict) or "method" not in doc or not isinstance(doc.get("entries"), list):
            raise ValueError(f"{f}: needs top-level 'method' and a list 'entries' (see README.md beside it)")
        for i, e in enumerate(doc["entries"]):
            if not isinstance(e, dict) or "dataset" not in e:
                raise ValueError(f"{f}: entry {i} needs at least 'dataset'")
            unknown = set(e) - {"dataset", "variant", "label", "psnr", "ssim", "lpips", "size_bytes", "size_mb",
                                "num_gaussians", "train_minutes", "fps", "source", "note"}
            if unknown:
                raise ValueError(f"{f}: entry {i} has unknown keys {sorted(unknown)}")
            size_bytes = e.get("size_bytes")
            size_mb = e.get("size_mb")
            if size_bytes is None and size_mb is not None:
                size_bytes = float(size_mb) * MB
            if size_mb is None and size_bytes is not None:
                size_mb = float(size_bytes) / MB
            rows.append({
                "method": doc["method"], "variant": str(e.get("variant", "default")), "dataset": e["dataset"],
                "label": e.get("label"), "psnr": e.get("psnr"), "ssim": e.get("ssim"), "lpips": e.get("lpips"),
                "size_bytes": size_bytes, "size_mb": size_mb, "num_gaussians": e.get("num_gaussians"),
                "train_minutes": e.get("train_minutes"), "fps": e.get("fps"),
                "source": e.get("source", doc.get("source")), "file": str(f),
            })
    out = pd.DataFrame(rows, columns=PAPER_COLUMNS)
    for c in ["psnr", "ssim", "lpips", "size_bytes", "size_mb", "num_gaussians", "train_minutes", "fps"]:
        out[c] = pd.to_numeric(out[c], errors="coerce")
    return out


# ---------------------------------------------------------------------------- paper-style tables
def _fmt(col: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if col == "num_gaussians":
        v = float(v)
        return f"{v / 1e6:.2f}M" if v >= 1e5 else (f"{v / 1e3:.1f}K" if v >= 1e3 else f"{int(v)}")
    if col in ("size_mb", "size_mb_paper"):
        v = float(v)
        return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}" if v >= 1 else f"{v:.3g}"
    if col in ("gap_psnr", "delta_psnr_ref"):
        return f"{float(v):+.2f}"
    if col == "size_ratio_ref":
        return f"{float(v):.1f}x"
    return f"{float(v):.{DECIMALS.get(col, 3)}f}"


def _fmt_std(col: str, std: Any, mean: Any) -> str:
    """A standard deviation in the unit and decimals the mean is shown with."""
    std, mean = float(std), abs(float(mean))
    if col == "num_gaussians":
        return f"{std / 1e6:.2f}M" if mean >= 1e5 else (f"{std / 1e3:.1f}K" if mean >= 1e3 else f"{std:.0f}")
    if col in ("size_mb", "size_mb_paper"):
        dec = 0 if mean >= 100 else 1 if mean >= 10 else 2 if mean >= 1 else (
            max(0, 2 - math.floor(math.log10(mean))) if mean > 0 else 3)
        return f"{std:.{dec}f}"
    return f"{std:.{DECIMALS.get(col, 3)}f}"


def _marks(values: pd.Series, higher: bool, col: str) -> dict[int, str]:
    """index -> "best" | "second" by the displayed value (ties share the mark)."""
    dec = DECIMALS.get(col)
    v = values.dropna().astype(float)
    if dec is not None:
        v = v.round(dec)
    uniq = sorted(v.unique(), reverse=higher)
    out = {}
    for idx, x in v.items():
        if uniq and x == uniq[0]:
            out[idx] = "best"
        elif len(uniq) > 1 and x == uniq[1]:
            out[idx] = "second"
    return out


def table_rows(df: pd.DataFrame, dataset: str, paper: pd.DataFrame | None = None,
               columns: Sequence[str] = TABLE_COLUMNS, ranked: Sequence[str] = DEFAULT_RANKED,
               rank_paper_rows: bool = False) -> pd.DataFrame:
    """The rows of one dataset's table: ours (aggregated over scenes) with each method's
    paper rows after its own; ``gap_psnr`` = our PSNR - the paper's PSNR of the same method
    and variant. Columns ``mark_<col>`` hold "best"/"second"/"" (ranked among our rows only
    unless ``rank_paper_rows``: paper numbers come from other hardware and code; flagged runs,
    see :func:`add_reference_columns`, are never ranked)."""
    agg = aggregate(df) if "n_scenes" not in df.columns else df
    ours = agg[agg["dataset"] == dataset].copy()
    ours["row_kind"] = "ours"
    ours["label"] = ours["submethod"]
    pap = (paper[paper["dataset"] == dataset].copy() if paper is not None and len(paper)
           else pd.DataFrame(columns=PAPER_COLUMNS))
    pap["row_kind"] = "paper"
    pap["label"] = [f"{submethod_label(m, v)}{' ' + str(l) if isinstance(l, str) and l else ''} (paper)"
                    for m, v, l in zip(pap["method"], pap["variant"], pap["label"])]
    gaps = []
    for _, r in ours.iterrows():
        match = pap[(pap["method"] == r["method"]) & (pap["variant"] == r["variant"])]
        gaps.append(r["psnr"] - match["psnr"].iloc[0] if len(match) and pd.notna(match["psnr"].iloc[0]) else float("nan"))
    ours["gap_psnr"] = gaps
    pap["gap_psnr"] = float("nan")
    rows = []
    for m in method_order(list(ours["method"]) + list(pap["method"])):
        rows.append(ours[ours["method"] == m])
        rows.append(pap[pap["method"] == m])
    keep = (["row_kind", "label", "method", "variant", "n_scenes", "n_scenes_dataset", "n_seeds", "ref_method",
             "ref_variant", "flag", "shared_gpu", "iterations", "ref_iterations"] + list(columns)
            + [f"{c}_std" for c in columns])
    rows = [r.reindex(columns=keep) for r in rows if len(r)]
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=keep)
    for col in columns:
        out[f"mark_{col}"] = ""
        if col in ranked and col in HIGHER_IS_BETTER:
            pool = out if rank_paper_rows else out[out["row_kind"] == "ours"]
            pool = pool[~_flagged(pool)]  # a failed run is not ranked
            for idx, mark in _marks(pd.to_numeric(pool[col], errors="coerce"), HIGHER_IS_BETTER[col], col).items():
                out.at[idx, f"mark_{col}"] = mark
    return out


def _flagged(rows: pd.DataFrame) -> pd.Series:
    """Rows whose ``flag`` holds a text (a failed run)."""
    return rows["flag"].map(lambda t: isinstance(t, str) and bool(t))


def _cell(row: pd.Series, col: str, style: str) -> str:
    """The mean (marked best / second) and, over several seeds, `` ± std``."""
    s = _fmt(col, row[col])
    std = row.get(f"{col}_std")
    spread = "" if std is None or pd.isna(std) or pd.isna(row[col]) else _fmt_std(col, std, row[col])
    if style == "latex":
        s = s.replace("%", r"\%").replace("–", "--")
    mark = row.get(f"mark_{col}", "")
    if mark == "best":
        s = f"**{s}**" if style == "md" else rf"\textbf{{{s}}}"
    elif mark == "second":
        s = f"<u>{s}</u>" if style == "md" else rf"\underline{{{s}}}"
    if spread:
        s += f" ± {spread}" if style == "md" else rf" {{\scriptsize$\pm${spread}}}"
    if col in SHARED_GPU_COLUMNS and row.get("shared_gpu") is True and s not in ("–", "--"):
        s += "†" if style == "md" else r"$^\dagger$"
    return s


def _label(row: pd.Series, style: str) -> str:
    lab = str(row["label"])
    partial = (row["row_kind"] == "ours" and pd.notna(row.get("n_scenes")) and pd.notna(row.get("n_scenes_dataset"))
               and row["n_scenes"] < row["n_scenes_dataset"])
    if style == "latex":
        lab = lab.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
        if row["row_kind"] == "paper":
            lab = rf"\textit{{{lab}}}"
    elif row["row_kind"] == "paper":
        lab = f"*{lab}*"
    if partial:
        lab += f" ({int(row['n_scenes'])}/{int(row['n_scenes_dataset'])} scenes)"
    if row["row_kind"] == "ours" and isinstance(row.get("ref_method"), str) and "@" in str(row["method"]):
        ref = submethod_label(row["ref_method"], row["ref_variant"])
        if style == "latex":
            ref = ref.replace("_", r"\_")
        lab += f" (over {ref})"
    if row["row_kind"] == "ours" and isinstance(row.get("flag"), str) and row["flag"]:
        lab = ("⚠ " + lab) if style == "md" else (r"$\triangle$ " + lab)
    return lab


def _footer(paper: pd.DataFrame | None, dataset: str, rows: pd.DataFrame | None = None) -> list[str]:
    notes = ["Mean over scenes of per-scene means; best **bold**, second <u>underlined</u> among our rows; "
             "MB = 10^6 bytes; ΔPSNR = ours − paper (same method and variant)."]
    seeds = pd.to_numeric(rows["n_seeds"], errors="coerce").max() if rows is not None and "n_seeds" in rows else None
    if seeds is not None and seeds > 1:
        notes.append(f"Over {int(seeds)} seeds: mean ± standard deviation of the dataset value over seeds.")
    notes.append("ΔPSNR vs input / × smaller: against the run a row starts from (a codec: the model it "
                 "compresses, named in the row; any other method: the 3DGS baseline of the same scene and seed).")
    if rows is not None and "iterations" in rows:
        ours = rows[rows["row_kind"] == "ours"]
        longer = ours[pd.to_numeric(ours["iterations"], errors="coerce")
                      > pd.to_numeric(ours["ref_iterations"], errors="coerce")]
        for _, r in longer.iterrows():
            notes.append(f"{r['label']}: trained {int(r['iterations'])} iterations, its input "
                         f"{int(r['ref_iterations'])}.")
    if rows is not None and "shared_gpu" in rows and (rows["shared_gpu"] == True).any():  # noqa: E712
        notes.append("† timings from a GPU shared with other jobs (GS_BENCH_JOBS_PER_GPU > 1): not solo figures.")
    if rows is not None and "flag" in rows:
        for _, r in rows[(rows["row_kind"] == "ours") & _flagged(rows)].iterrows():
            why = method_note(r["method"])
            notes.append(f"⚠ {r['label']} failed on this data ({r['flag']})" + (f": {why}" if why else "."))
    if paper is not None and len(paper):
        for src in dict.fromkeys(paper.loc[paper["dataset"] == dataset, "source"].dropna()):
            notes.append(f"Paper rows: {src}")
    return notes


def method_note(method: str) -> str | None:
    """The method's own word on when it fails (its spec's ``failure_note``), for flagged rows."""
    try:
        from gs.methods.registry import get_method

        return getattr(get_method(str(method).split("@", 1)[0]), "failure_note", None)
    except Exception:  # unknown or unloadable method: the flag stands without a note
        return None


def markdown_table(df: pd.DataFrame, dataset: str, paper: pd.DataFrame | None = None,
                   columns: Sequence[str] = TABLE_COLUMNS, **kw: Any) -> str:
    """A GitHub-Markdown table of one dataset (see :func:`table_rows`)."""
    rows = table_rows(df, dataset, paper, columns, **kw)
    title = DATASET_TITLES.get(dataset, dataset)
    head = "| Method | " + " | ".join(COLUMN_TITLES.get(c, c) for c in columns) + " |"
    sep = "|---|" + "|".join("---:" for _ in columns) + "|"
    body = ["| " + _label(r, "md") + " | " + " | ".join(_cell(r, c, "md") for c in columns) + " |"
            for _, r in rows.iterrows()]
    foot = ["", *[f"{n}  " for n in _footer(paper, dataset, rows)]]
    return "\n".join([f"### {title}", "", head, sep, *body, *foot]) + "\n"


def latex_table(df: pd.DataFrame, dataset: str, paper: pd.DataFrame | None = None,
                columns: Sequence[str] = TABLE_COLUMNS, caption: str | None = None, **kw: Any) -> str:
    """A booktabs LaTeX table of one dataset; paper rows in italics (needs \\usepackage{booktabs})."""
    rows = table_rows(df, dataset, paper, columns, **kw)
    title = DATASET_TITLES.get(dataset, dataset).replace("&", r"\&")
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             r"\begin{tabular}{l" + "r" * len(columns) + "}", r"\toprule",
             "Method & " + " & ".join(LATEX_TITLES.get(c, c) for c in columns) + r" \\", r"\midrule"]
    prev = None
    for _, r in rows.iterrows():
        if prev is not None and r["method"] != prev:
            lines.append(r"\midrule")
        prev = r["method"]
        lines.append(_label(r, "latex") + " & " + " & ".join(_cell(r, c, "latex") for c in columns) + r" \\")
    seeds = pd.to_numeric(rows["n_seeds"], errors="coerce").max() if len(rows) else None
    cap = caption or (f"{title}: mean over scenes. Best in bold, second underlined (our rows); "
                      r"paper-reported numbers in italics; MB $=10^6$ bytes; "
                      r"$\Delta$PSNR $=$ ours $-$ paper."
                      + (rf" Mean $\pm$ standard deviation over {int(seeds)} seeds." if seeds and seeds > 1 else ""))
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{cap}}}",
              rf"\label{{tab:{dataset}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_tables(df: pd.DataFrame, out_dir: str | Path, paper: pd.DataFrame | None = None) -> list[Path]:
    """Everything the report needs from the tables: ``results.csv`` (per run),
    ``summary.csv`` (aggregated), survey CSVs, and per dataset ``<dataset>.md`` / ``.tex``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [write_results_csv(df, out_dir / "results.csv")]
    agg = aggregate(df)
    agg.to_csv(out_dir / "summary.csv", index=False)
    written.append(out_dir / "summary.csv")
    written += write_survey_csvs(df, out_dir / "survey")
    for dataset in sorted(agg["dataset"].unique()):
        md = out_dir / f"{dataset}.md"
        md.write_text(markdown_table(agg, dataset, paper))
        tex = out_dir / f"{dataset}.tex"
        tex.write_text(latex_table(agg, dataset, paper))
        written += [md, tex]
    return written


def results_to_json(df: pd.DataFrame) -> str:
    """Aggregated rows as JSON records (for the HTML report); NaN -> null."""
    return json.dumps(json.loads(aggregate(df).to_json(orient="records")), indent=2)


__all__ = [
    "SURVEY_HEADER", "aggregate", "collect_results", "latex_table", "load_paper_results", "markdown_table",
    "method_order", "read_survey_csv", "submethod_label", "survey_table", "table_rows", "write_results_csv",
    "write_survey_csvs", "write_tables",
]
