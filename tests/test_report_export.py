"""Survey export read back with the 3DGS.zip survey's columns and units; seed spread in the
paper-style tables and the RD plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gs.report.tables import (
    SURVEY_HEADER,
    aggregate,
    collect_results,
    latex_table,
    markdown_table,
    read_survey_csv,
    survey_table,
    write_survey_csvs,
)

# the survey's per-scene contribution files (<Dataset>/<scene>.csv) use exactly this header
SURVEY_COLUMNS = ["Submethod", "PSNR", "SSIM", "LPIPS", "Size [Bytes]", "#Gaussians"]


def _metrics(path: Path, scene, method, variant, seed, psnr, size, n, lpips=0.2):
    data = {"schema_version": 1, "dataset": "mipnerf360", "scene": scene, "method": method, "variant": variant,
            "seed": seed, "metrics": {"psnr": psnr, "ssim": 0.8, "lpips": lpips},
            "size_bytes": size, "size_mb": size / 1e6, "num_gaussians": n,
            "timings": {"train_seconds": 60.0 + seed}, "fps": 100.0}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def seeded(tmp_path):
    """Two scenes x three seeds; gns sizes that are not whole MB and odd byte counts."""
    paths = []
    for scene, off in (("bicycle", -1.0), ("room", 1.0)):
        for seed in (0, 1, 2):
            d = tmp_path / scene / str(seed)
            paths.append(_metrics(d / "3dgs.json", scene, "3dgs", "default", seed, 27.0 + off + 0.1 * seed,
                                  734_000_123 + seed, 3_000_001 + seed))
            paths.append(_metrics(d / "gns.json", scene, "gns", "15pct", seed, 26.5 + off - 0.2 * seed,
                                  45_678_901 + 2 * seed, 456_789 + 3 * seed))
            paths.append(_metrics(d / "hgsc.json", scene, "hgsc@3dgs", "default@default", seed, 26.0 + off,
                                  12_345_677, 901_234, lpips=None))
    return collect_results(paths)


def test_survey_csv_reads_back_with_the_survey_schema(seeded, tmp_path):
    """What the dataset_tables rule writes: exact header, sizes in bytes and counts as whole
    numbers, PSNR as the mean over scenes of the mean over seeds, missing LPIPS empty."""
    out = tmp_path / "mipnerf360_survey.csv"
    survey_table(aggregate(seeded)).to_csv(out, index=False)
    with open(out, newline="") as f:
        raw = list(csv.reader(f))
    assert raw[0] == SURVEY_COLUMNS
    back = read_survey_csv(out)
    assert list(back.columns) == SURVEY_COLUMNS == SURVEY_HEADER
    assert list(back["Submethod"]) == ["3dgs", "gns 15pct", "hgsc@3dgs default@default"]
    assert str(back["Size [Bytes]"].dtype) == "Int64" and str(back["#Gaussians"].dtype) == "Int64"
    # bytes, not MB: the mean over seeds of 734000123 + {0, 1, 2}, rounded to whole bytes
    assert back.loc[0, "Size [Bytes]"] == 734_000_124 and back.loc[0, "#Gaussians"] == 3_000_002
    assert back.loc[1, "Size [Bytes]"] == 45_678_903 and back.loc[1, "#Gaussians"] == 456_792
    assert back.loc[0, "PSNR"] == pytest.approx(27.1)  # (26 + 28)/2 + mean(0, .1, .2)
    assert back.loc[1, "PSNR"] == pytest.approx(26.3)
    assert pd.isna(back.loc[2, "LPIPS"]) and raw[3][3] == ""  # missing stays an empty cell
    # per-scene files in the survey's folder layout read back the same way
    written = write_survey_csvs(seeded, tmp_path / "survey")
    for p in written:
        t = read_survey_csv(p)
        assert len(t) == 3 and t["Size [Bytes]"].notna().all()
    assert read_survey_csv(tmp_path / "survey" / "MipNeRF360" / "room.csv").loc[0, "PSNR"] == pytest.approx(28.1)


@pytest.mark.parametrize("text, match", [
    ("Submethod,PSNR,SSIM,LPIPS,Size [MB],#Gaussians\nx,1,1,1,1,1\n", "header"),
    ("Submethod,PSNR,SSIM,LPIPS,Size [Bytes],#Gaussians\nx,30,0.9,0.1,12.5,100\n", "Size \\[Bytes\\].*whole"),
    ("Submethod,PSNR,SSIM,LPIPS,Size [Bytes],#Gaussians\nx,30,0.9,0.1,125,1.2e6\n", "#Gaussians.*whole"),
    ("Submethod,PSNR,SSIM,LPIPS,Size [Bytes],#Gaussians\nx,abc,0.9,0.1,125,12\n", "PSNR"),
    ("Submethod,PSNR,SSIM,LPIPS,Size [Bytes],#Gaussians\nx,30,0.9,0.1,125\n", "line 2"),
])
def test_survey_reader_rejects_wrong_units(tmp_path, text, match):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_survey_csv(p)


def test_tables_show_mean_and_std_over_seeds(seeded):
    agg = aggregate(seeded)
    gns = agg[agg["method"] == "gns"].iloc[0]
    # std over seeds of the dataset mean: seeds give 26.5, 26.3, 26.1
    assert gns["psnr_std"] == pytest.approx(np.std([26.5, 26.3, 26.1], ddof=1))
    md = markdown_table(agg, "mipnerf360")
    line = next(ln for ln in md.splitlines() if ln.startswith("| gns 15pct"))
    assert "26.30</u> ± 0.20" in line  # second best PSNR, spread beside it
    assert "45.7</u> ± 0.0 |" in line and "0.46M** ± 0.00M" in line  # same unit and decimals as the mean
    assert "**27.10** ± 0.10" in md  # the mark stays on the mean
    assert "3 seeds" in md
    tex = latex_table(agg, "mipnerf360")
    assert r"26.30} {\scriptsize$\pm$0.20}" in tex and "3 seeds" in tex
    # one seed: no spread shown
    one = markdown_table(aggregate(seeded[seeded["seed"] == 0]), "mipnerf360")
    assert "±" not in one and "seeds" not in one


def test_rd_plot_draws_the_seed_spread(seeded):
    from matplotlib.collections import PolyCollection

    from gs.report.plots import rd_figure

    agg = aggregate(seeded)
    bars = rd_figure(agg, "mipnerf360", spread="bars", metrics=("psnr",))
    plain = rd_figure(agg, "mipnerf360", spread=None, metrics=("psnr",))
    # error bars add one line collection per method with a spread
    assert len(bars.axes[0].collections) > len(plain.axes[0].collections)
    band = rd_figure(agg.assign(method="gns"), "mipnerf360", spread="band", metrics=("psnr",))
    assert any(isinstance(c, PolyCollection) for c in band.axes[0].collections)
