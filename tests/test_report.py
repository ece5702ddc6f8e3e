"""gs.report: tables (ranks, survey CSV, paper rows + gap), RD plots, comparison strips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gs.report.tables import (
    SURVEY_HEADER,
    aggregate,
    collect_results,
    latex_table,
    load_paper_results,
    markdown_table,
    table_rows,
    write_survey_csvs,
    write_tables,
)

PAPER_DIR = Path(__file__).resolve().parents[1] / "gs" / "methods" / "paper_results"


def _metrics_json(path: Path, dataset, scene, method, variant, psnr, ssim, lpips, size, n, seed=0):
    data = {
        "schema_version": 1, "dataset": dataset, "scene": scene, "method": method, "variant": variant,
        "seed": seed, "protocol": {"resolution": "8x6", "num_test_views": 2, "lpips_net": "vgg"},
        "metrics": {"psnr": psnr, "ssim": ssim, "lpips": lpips} if lpips is not None else
                   {"psnr": psnr, "ssim": ssim, "lpips": None, "lpips_reason": "lpips package not installed"},
        "size_bytes": size, "size_mb": size / 1e6, "num_gaussians": n,
        "timings": {"train_seconds": 60.0, "encode_seconds": None, "encode_seconds_reason": "x"},
        "fps": 100.0, "fps_device": "cuda", "peak_gpu_memory_bytes": 1000,
        "backend": "torch", "device": {"type": "cpu", "name": "cpu"},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def results(tmp_path):
    """Two scenes of mipnerf360; 3dgs, gns at two rates, hgsc at one; two seeds for 3dgs."""
    rows = [  # method, variant, psnr, ssim, lpips, size, n
        ("3dgs", "default", 27.0, 0.81, 0.21, 700_000_000, 3_000_000),
        ("gns", "5pct", 26.0, 0.78, 0.25, 30_000_000, 120_000),
        ("gns", "15pct", 26.9, 0.80, 0.22, 100_000_000, 400_000),
        ("hgsc", "default", 26.5, 0.79, 0.23, 20_000_000, 900_000),
    ]
    paths = []
    for scene, off in (("bicycle", -1.0), ("room", 1.0)):
        for m, v, p, s, l, size, n in rows:
            paths.append(_metrics_json(tmp_path / "res" / scene / m / v / "metrics.json", "mipnerf360", scene, m, v,
                                       p + off, s, l, size, n))
        paths.append(_metrics_json(tmp_path / "res" / scene / "3dgs" / "default" / "seed1.json", "mipnerf360", scene,
                                   "3dgs", "default", 27.2 + off, 0.81, 0.21, 700_000_000, 3_000_000, seed=1))
    return paths


def test_collect_and_aggregate(results):
    df = collect_results(results)
    assert len(df) == 10
    for c in ["dataset", "scene", "method", "variant", "psnr", "ssim", "lpips", "size_bytes", "num_gaussians",
              "train_seconds", "fps"]:
        assert c in df.columns
    assert df["encode_seconds"].isna().all()
    agg = aggregate(df)
    base = agg[(agg["method"] == "3dgs")].iloc[0]
    # mean over scenes of the per-scene mean over seeds: ((26+26.2)/2 + (28+28.2)/2) / 2
    assert base["psnr"] == pytest.approx(27.1)
    assert base["n_seeds"] == 2 and base["n_scenes"] == 2
    assert base["psnr_std"] == pytest.approx(np.std([27.0, 27.2], ddof=1))
    assert np.isnan(agg[agg["method"] == "gns"]["psnr_std"]).all()
    assert list(agg["method"])[0] == "3dgs"


def test_collect_names_bad_file(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        collect_results([bad])


def test_best_and_second_marks(results):
    rows = table_rows(collect_results(results), "mipnerf360", None)
    ours = rows[rows["row_kind"] == "ours"].set_index("label")
    assert ours.loc["3dgs", "mark_psnr"] == "best"          # 27.1
    assert ours.loc["gns 15pct", "mark_psnr"] == "second"   # 26.9
    assert ours.loc["gns 5pct", "mark_psnr"] == ""
    assert ours.loc["hgsc", "mark_size_mb"] == "best"       # 20 MB, lower is better
    assert ours.loc["gns 5pct", "mark_size_mb"] == "second"  # 30 MB
    assert ours.loc["3dgs", "mark_size_mb"] == ""
    assert ours.loc["gns 5pct", "mark_num_gaussians"] == "best"
    assert ours.loc["3dgs", "mark_lpips"] == "best"         # lower is better
    assert ours.loc["gns 15pct", "mark_lpips"] == "second"
    md = markdown_table(collect_results(results), "mipnerf360")
    assert "**27.10**" in md and "<u>26.90</u>" in md
    tex = latex_table(collect_results(results), "mipnerf360")
    assert r"\textbf{27.10}" in tex and r"\underline{26.90}" in tex and r"\begin{tabular}" in tex


def test_ties_share_the_mark():
    df = pd.DataFrame({"dataset": "d", "scene": "s", "method": ["a", "b", "c"], "variant": "default", "seed": 0,
                       "psnr": [30.001, 30.004, 29.0], "ssim": 0.9, "lpips": 0.1, "size_bytes": 1e6,
                       "size_mb": 1.0, "num_gaussians": 10, "train_seconds": 1.0, "encode_seconds": np.nan,
                       "decode_seconds": np.nan, "fps": 1.0, "peak_gpu_memory_bytes": np.nan})
    rows = table_rows(df, "d").set_index("label")
    assert rows.loc["a", "mark_psnr"] == rows.loc["b", "mark_psnr"] == "best"  # both show 30.00
    assert rows.loc["c", "mark_psnr"] == "second"


def test_survey_csv_header_and_readback(results, tmp_path):
    df = collect_results(results)
    written = write_survey_csvs(df, tmp_path / "survey")
    main = tmp_path / "survey" / "MipNeRF360.csv"
    assert main in written and (tmp_path / "survey" / "MipNeRF360" / "bicycle.csv") in written
    assert main.read_text().splitlines()[0] == "Submethod,PSNR,SSIM,LPIPS,Size [Bytes],#Gaussians"
    back = pd.read_csv(main)
    assert list(back.columns) == SURVEY_HEADER
    assert list(back["Submethod"]) == ["3dgs", "gns 5pct", "gns 15pct", "hgsc"]
    assert back.loc[0, "Size [Bytes]"] == 700_000_000 and back.loc[0, "#Gaussians"] == 3_000_000
    assert back.loc[0, "PSNR"] == pytest.approx(27.1)
    scene = pd.read_csv(tmp_path / "survey" / "MipNeRF360" / "room.csv")
    assert scene.loc[0, "PSNR"] == pytest.approx(28.1)


def test_missing_metric_stays_missing(tmp_path):
    p1 = _metrics_json(tmp_path / "a.json", "tandt", "train", "3dgs", "default", 22.0, 0.8, None, 1e8, 10)
    p2 = _metrics_json(tmp_path / "b.json", "tandt", "truck", "3dgs", "default", 24.0, 0.8, 0.2, 1e8, 10)
    agg = aggregate(collect_results([p1, p2]))
    assert np.isnan(agg.loc[0, "lpips"])  # never a mean over the scenes that happen to have it
    write_survey_csvs(collect_results([p1, p2]), tmp_path / "s")
    back = pd.read_csv(tmp_path / "s" / "TanksAndTemples.csv")
    assert np.isnan(back.loc[0, "LPIPS"])
    assert "–" in markdown_table(agg, "tandt")


def test_paper_results_and_gap(results, tmp_path):
    paper = load_paper_results(PAPER_DIR)
    three = paper[(paper["method"] == "3dgs") & (paper["dataset"] == "mipnerf360")].iloc[0]
    assert three["psnr"] == 27.21 and three["size_bytes"] == pytest.approx(734e6)
    assert set(paper[paper["method"] == "3dgs"]["dataset"]) == {"mipnerf360", "tandt", "deepblending"}
    rows = table_rows(collect_results(results), "mipnerf360", paper[paper["method"] == "3dgs"])
    assert list(rows["row_kind"][:2]) == ["ours", "paper"]  # the paper row sits beside ours
    assert rows.loc[0, "gap_psnr"] == pytest.approx(27.1 - 27.21)
    assert rows.loc[1, "label"].endswith("(paper)") and np.isnan(rows.loc[1, "gap_psnr"])
    assert rows.loc[1, "mark_psnr"] == ""  # paper rows are not ranked
    md = markdown_table(collect_results(results), "mipnerf360", paper[paper["method"] == "3dgs"])
    assert "-0.11" in md and "(paper)" in md and "Kerbl" in md


def test_paper_yaml_schema_errors(tmp_path):
    (tmp_path / "x.yaml").write_text("method: x\nentries:\n  - dataset: d\n    psnr: 1\n    psnrr: 2\n")
    with pytest.raises(ValueError, match=r"x.yaml.*psnrr"):
        load_paper_results(tmp_path)
    (tmp_path / "x.yaml").write_text("entries: []\n")
    with pytest.raises(ValueError, match="x.yaml"):
        load_paper_results(tmp_path)


def test_write_tables(results, tmp_path):
    files = write_tables(collect_results(results), tmp_path / "tables", load_paper_results(PAPER_DIR))
    names = {p.name for p in files}
    assert {"results.csv", "summary.csv", "MipNeRF360.csv", "mipnerf360.md", "mipnerf360.tex"} <= names
    assert all(p.stat().st_size > 0 for p in files)


# ---------------------------------------------------------------------------- plots
@pytest.mark.parametrize("spread", [None, "bars", "band"])
def test_rd_plots(results, tmp_path, spread):
    from gs.report.plots import rd_figure, write_rd_plots

    df = collect_results(results)
    paper = load_paper_results(PAPER_DIR)
    files = write_rd_plots(df, tmp_path / "plots", paper, spread=spread)
    assert {p.name for p in files} == {"rd_mipnerf360.png", "rd_mipnerf360.svg"}
    assert all(p.stat().st_size > 1000 for p in files)
    with Image.open(tmp_path / "plots" / "rd_mipnerf360.png") as im:
        assert im.width > 500 and im.height > 200
    fig = rd_figure(df, "mipnerf360", paper, spread=spread)
    axes = fig.axes
    assert len(axes) == 3 and all(ax.get_xscale() == "log" for ax in axes)
    assert "MB" in axes[0].get_xlabel() and "PSNR" in axes[0].get_ylabel()
    # our gns curve is sorted by size; the paper points are hollow
    gns = [ln for ln in axes[0].get_lines() if ln.get_label() == "gns"][0]
    assert list(gns.get_xdata()) == sorted(gns.get_xdata())
    hollow = [c for c in axes[0].collections if c.get_offsets().shape[0] and len(c.get_facecolors()) == 0]
    assert hollow, "paper points should be drawn with hollow markers"


def test_rd_plot_rejects_bad_spread(results):
    from gs.report.plots import rd_figure

    with pytest.raises(ValueError, match="spread"):
        rd_figure(collect_results(results), "mipnerf360", spread="whiskers")


def test_rd_plot_leaves_out_a_metric_without_values(tmp_path):
    """LPIPS None everywhere (no VGG weights offline): no empty LPIPS panel, the subtitle says so."""
    from gs.report.plots import rd_figure

    paths = [_metrics_json(tmp_path / m / v / "metrics.json", "mipnerf360", "room", m, v, p, s, None, size, n)
             for m, v, p, s, size, n in (("gns", "5pct", 25.0, 0.7, 30_000_000, 1000),
                                         ("gns", "15pct", 26.0, 0.8, 90_000_000, 3000))]
    df = collect_results(paths)
    fig = rd_figure(df, "mipnerf360", spread="bars")
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert len(fig.axes) == 2 and not any("LPIPS" in lb for lb in labels)
    assert "not plotted: LPIPS" in fig._suptitle.get_text()
    # nothing to draw at all: the requested panels stay (empty), no metric is named missing
    none = rd_figure(df.assign(psnr=float("nan"), ssim=float("nan")), "mipnerf360")
    assert len(none.axes) == 3 and "not plotted" not in none._suptitle.get_text()


@pytest.mark.parametrize("spread", ["bars", "band"])
def test_rd_plot_subtitle_names_the_seed_spread(results, spread):
    from gs.report.plots import rd_figure

    df = collect_results(results)  # 3dgs has two seeds
    text = rd_figure(df, "mipnerf360", spread=spread)._suptitle.get_text()
    # only 3dgs has a spread, and it is one point: error bars even when bands are asked for
    assert "error bars: ± 1 standard deviation over 2 seeds" in text and "bands" not in text
    gns = collect_results(results).assign(method="gns", variant=lambda d: d["variant"] + d["method"])
    banded = rd_figure(gns, "mipnerf360", spread=spread)._suptitle.get_text()
    assert ("bands: ±" in banded) == (spread == "band") and ("error bars: ±" in banded) == (spread == "bars")
    assert "standard deviation" not in rd_figure(df, "mipnerf360", spread=None)._suptitle.get_text()
    one_seed = df[df["seed"] == 0]
    assert "standard deviation" not in rd_figure(one_seed, "mipnerf360", spread=spread)._suptitle.get_text()


# ---------------------------------------------------------------------------- strips
def _eval_dir(root: Path, name: str, n_views: int, w: int, h: int, value: int) -> Path:
    d = root / name
    (d / "renders").mkdir(parents=True)
    (d / "gt").mkdir()
    per_image = []
    for i in range(n_views):
        Image.new("RGB", (w, h), (value, 0, 0)).save(d / "renders" / f"{i:05d}.png")
        Image.new("RGB", (w, h), (0, 0, 255)).save(d / "gt" / f"{i:05d}.png")
        per_image.append({"index": i, "render": f"renders/{i:05d}.png", "gt": f"gt/{i:05d}.png", "psnr": 20.0 + i})
    (d / "metrics.json").write_text(json.dumps({"per_image": per_image}))
    return d


def test_strips(tmp_path):
    from gs.report.strips import GAP, comparison_strip, write_strips

    base = _eval_dir(tmp_path, "3dgs", 5, 40, 30, 100)
    gns = _eval_dir(tmp_path, "gns", 5, 40, 30, 200)
    files = write_strips([("3dgs", base), ("gns 15pct", gns / "metrics.json")], tmp_path / "strips", n_views=3,
                         tile_height=60)
    assert [p.name for p in files] == ["strip_000.png", "strip_002.png", "strip_004.png"]
    with Image.open(files[0]) as im:
        cap = max(18, min(40, 60 // 8))
        assert im.size == (3 * 80 + 2 * GAP, 60 + cap)  # GT | baseline | method, each 80x60
        px = im.convert("RGB").load()
        assert px[40, cap + 30] == (0, 0, 255)       # ground truth first
        assert px[80 + GAP + 40, cap + 30][0] == 100  # then the baseline
    strip = comparison_strip([("a", np.zeros((10, 12, 3), np.uint8), 30.0), ("b", np.ones((20, 24, 3)), None)])
    assert strip.height == 10 + 18 and strip.width == 12 + 12 + GAP
    with pytest.raises(ValueError, match="out of range"):
        write_strips([("3dgs", base)], tmp_path / "s2", views=[7])


def _with(path: Path, **changes) -> Path:
    data = json.loads(path.read_text())
    for key, value in changes.items():
        data[key] = value
    path.write_text(json.dumps(data))
    return path


def test_rows_are_compared_with_their_own_input_and_collapses_are_flagged(tmp_path):
    """A codec row is measured against the model it compresses (hgsc@gns vs gns, not vs 3dgs);
    a run > 3 dB below its reference is flagged in the per-run CSV, the table and its notes."""
    res = tmp_path / "res"
    paths = [
        _metrics_json(res / "a", "llff", "fern", "3dgs", "default", 26.0, 0.8, None, 100_000_000, 400_000),
        _metrics_json(res / "b", "llff", "fern", "gns", "15pct", 26.5, 0.8, None, 20_000_000, 60_000),
        _metrics_json(res / "c", "llff", "fern", "hgsc@gns", "default@15pct", 26.2, 0.8, None, 4_000_000, 55_000),
        _metrics_json(res / "d", "llff", "fern", "edim", "default", 14.6, 0.4, None, 50_000, 173),
    ]
    df = collect_results(paths)
    row = df.set_index("method").loc["hgsc@gns"]
    assert (row["ref_method"], row["ref_variant"]) == ("gns", "15pct")
    assert row["delta_psnr_ref"] == pytest.approx(-0.3) and row["size_ratio_ref"] == pytest.approx(5.0)
    assert df.set_index("method").loc["gns", "delta_psnr_ref"] == pytest.approx(0.5)
    assert df.set_index("method").loc["edim", "flag"] == "-11.4 dB vs 3dgs"
    assert df.set_index("method").loc["gns", "flag"] == ""
    md = markdown_table(df, "llff")
    assert "| ⚠ edim |" in md and "| ⚠ gns" not in md and "hgsc@gns default@15pct (over gns 15pct)" in md
    edim_row = next(ln for ln in md.splitlines() if ln.startswith("| ⚠ edim"))
    assert "**" not in edim_row  # a failed run is not ranked best at anything
    assert "failed on this data (fern: -11.4 dB vs 3dgs)" in md
    assert "$\\triangle$ edim" in latex_table(df, "llff")


def test_timings_from_a_shared_gpu_are_marked(tmp_path):
    res = tmp_path / "res"
    shared = {"type": "cuda", "name": "GPU", "gpu_sharing": {"exclusive": False, "jobs_per_gpu": 2, "how": "x"}}
    solo = {"type": "cuda", "name": "GPU", "gpu_sharing": {"exclusive": True, "jobs_per_gpu": 1, "how": "x"}}
    paths = [
        _with(_metrics_json(res / "a", "llff", "fern", "3dgs", "default", 26.0, 0.8, None, 10, 4), device=solo,
              extra={"train_gpu_sharing": solo["gpu_sharing"]}),
        _with(_metrics_json(res / "b", "llff", "fern", "gns", "15pct", 26.5, 0.8, None, 5, 2), device=solo,
              extra={"train_gpu_sharing": shared["gpu_sharing"]}),
    ]
    df = collect_results(paths)
    assert list(df.sort_values("method")["solo_timings"]) == [True, False]
    md = markdown_table(df, "llff")
    lines = {ln.split("|")[1].strip(): ln for ln in md.splitlines() if ln.startswith("| 3dgs") or ln.startswith("| gns")}
    assert "1.0†" in lines["gns 15pct"] and "†" not in lines["3dgs"]
    assert "not solo figures" in md


def test_flags_survive_a_csv_round_trip(tmp_path):
    """The dataset tables read results.csv back: empty flags (NaN there) flag nothing."""
    res = tmp_path / "res"
    paths = [
        _metrics_json(res / "a", "llff", "fern", "3dgs", "default", 26.0, 0.8, None, 100, 400),
        _metrics_json(res / "b", "llff", "fern", "gns", "15pct", 26.5, 0.8, None, 20, 60),
        _metrics_json(res / "c", "llff", "fern", "edim", "default", 14.6, 0.4, None, 5, 2),
    ]
    csv = tmp_path / "results.csv"
    collect_results(paths).to_csv(csv, index=False)
    md = markdown_table(pd.read_csv(csv), "llff")
    assert "| gns 15pct |" in md and "| 3dgs |" in md and "| ⚠ edim |" in md
    assert "nan" not in md
