"""gs.report.bdrate: Bjøntegaard deltas on curves with a known answer, marking, tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gs.report.bdrate import (
    MEAN_ROW,
    bd_markdown,
    bd_psnr,
    bd_quality,
    bd_rate,
    bd_table,
    bd_tables,
    resolve_anchor,
)

# a concave, increasing RD curve: PSNR against size in bytes
RATES = np.array([1.0e6, 2.5e6, 6.0e6, 1.5e7, 4.0e7])
PSNR = np.array([24.0, 26.1, 27.6, 28.5, 29.0])


@pytest.mark.parametrize("x", [-30.0, -5.0, 12.5, 50.0])
def test_rate_shift_gives_that_bd_rate(x):
    """The same qualities at (1 + x/100) times the size: BD-rate = x % exactly."""
    got = bd_rate(RATES, PSNR, RATES * (1 + x / 100), PSNR)
    assert got.ok and got.value == pytest.approx(x, abs=1e-9)
    # the shifted curve is the same curve in quality at equal rate only up to interpolation:
    # its BD-PSNR has the sign opposite to the rate change
    q = bd_psnr(RATES, PSNR, RATES * (1 + x / 100), PSNR)
    assert q.ok and np.sign(q.value) == -np.sign(x)


@pytest.mark.parametrize("d", [-0.7, 0.25, 1.5])
def test_quality_shift_gives_that_bd_psnr(d):
    got = bd_psnr(RATES, PSNR, RATES, PSNR + d)
    assert got.ok and got.value == pytest.approx(d, abs=1e-12)
    r = bd_rate(RATES, PSNR, RATES, PSNR + d)  # better quality at equal size = smaller at equal quality
    assert r.ok and np.sign(r.value) == -np.sign(d)


def test_hand_computed_partial_overlap():
    """Straight lines (PCHIP of collinear points is the line itself), different slopes and
    ranges: anchor q = 30 + 2x on x = log10(rate) in [0, 3], test q = 29 + 3x on [1, 4].
    BD-PSNR: mean of (x - 1) over the x overlap [1, 3] = 1 dB.
    BD-rate: x_a(q) = (q - 30)/2, x_t(q) = (q - 29)/3 on the q overlap [32, 36]:
    mean of (32 - q)/6 = -1/3 decades -> (10**(-1/3) - 1) * 100 %."""
    xa, xt = np.arange(0, 4), np.arange(1, 5)
    ra, rt = 10.0 ** xa, 10.0 ** xt
    qa, qt = 30 + 2.0 * xa, 29 + 3.0 * xt
    assert bd_quality(ra, qa, rt, qt).value == pytest.approx(1.0, abs=1e-12)
    assert bd_rate(ra, qa, rt, qt).value == pytest.approx((10 ** (-1 / 3) - 1) * 100, abs=1e-10)


def test_against_a_dense_numeric_integral():
    """Curved, partially overlapping curves: the exact PCHIP integral equals a dense
    trapezoid rule over the overlap (same interpolant, independent integration)."""
    from scipy.interpolate import PchipInterpolator

    rt = RATES * 1.7
    qt = PSNR + np.array([0.3, 0.1, 0.0, -0.1, 0.2])
    xa, xt = np.log10(RATES), np.log10(rt)
    lo, hi = max(xa[0], xt[0]), min(xa[-1], xt[-1])
    grid = np.linspace(lo, hi, 200_001)
    gap = PchipInterpolator(xt, qt)(grid) - PchipInterpolator(xa, PSNR)(grid)
    expected = np.sum((gap[1:] + gap[:-1]) / 2 * np.diff(grid)) / (hi - lo)  # trapezoids (numpy 1 and 2)
    assert bd_psnr(RATES, PSNR, rt, qt).value == pytest.approx(expected, abs=1e-8)


def test_fewer_than_four_points_is_marked_not_extrapolated():
    got = bd_rate(RATES, PSNR, RATES[:3] * 0.5, PSNR[:3])
    assert got.value is None and "3 rate points" in got.reason and "at least 4" in got.reason
    got = bd_psnr(RATES[:3], PSNR[:3], RATES, PSNR)
    assert got.value is None and "anchor" in got.reason
    # a missing metric does not count as a point
    q = PSNR.copy()
    q[1] = np.nan
    got = bd_psnr(RATES, PSNR, RATES[:4], q[:4])
    assert got.value is None and "without a size or metric" in got.reason


def test_disjoint_and_degenerate_curves_are_marked():
    got = bd_psnr(RATES, PSNR, RATES * 1e3, PSNR)  # no common rate range
    assert got.value is None and "overlap" in got.reason
    got = bd_rate(RATES, PSNR, RATES, PSNR + 10)  # no common quality range
    assert got.value is None and "overlap" in got.reason
    got = bd_psnr(RATES, PSNR, [1e6, 1e6, 2e6, 3e6], [24, 25, 26, 27])
    assert got.value is None and "same rate" in got.reason


# ---------------------------------------------------------------------------- tables
def _rows(dataset, scene, method, variants, rates, quality, seed=0, ssim_off=0.0):
    return [{"dataset": dataset, "scene": scene, "method": method, "variant": v, "seed": seed,
             "size_bytes": r, "psnr": q, "ssim": 0.5 + q / 100 + ssim_off}
            for v, r, q in zip(variants, rates, quality)]


V5 = ["v1", "v2", "v3", "v4", "v5"]


def _df(seeds=(0,), datasets=("dsA",), scenes=("s1", "s2")):
    rows = []
    for ds in datasets:
        for scene in scenes:
            for seed in seeds:
                rows += _rows(ds, scene, "3dgs", ["default"], [7e8], [30.0], seed)
                rows += _rows(ds, scene, "hgsc@3dgs", V5, RATES, PSNR, seed)
                # gns: 20 % smaller at equal quality, plus a seed-dependent wobble
                rows += _rows(ds, scene, "gns", V5, RATES * (0.8 + 0.01 * seed), PSNR, seed)
                rows += _rows(ds, scene, "argp", V5[:2], RATES[:2], PSNR[:2], seed)  # 2 points only
                rows += _rows(ds, scene, "edim", V5, RATES, PSNR + 0.5, seed)
    return pd.DataFrame(rows)


def test_default_anchor_is_the_baseline_codec_chain():
    df = _df()
    assert resolve_anchor(df, "dsA") == ("hgsc@3dgs", "auto: the baseline codec chain")
    assert resolve_anchor(df, "dsA", "gns")[0] == "gns"
    assert resolve_anchor(df, "dsA", {"dsA": "edim"})[0] == "edim"
    assert resolve_anchor(df, "dsA", "nope")[0] is None
    # without a codec chain: the baseline has one point, so the first curve with 4+ points
    no_chain = df[df["method"] != "hgsc@3dgs"]
    anchor, how = resolve_anchor(no_chain, "dsA")
    assert anchor == "gns" and "first curve" in how


def test_bd_table_one_seed():
    t = bd_table(_df(), "dsA").set_index("method")
    assert t.loc["hgsc@3dgs", "is_anchor"] and t.loc["hgsc@3dgs", "bd_rate_psnr"] == pytest.approx(0, abs=1e-9)
    assert t.loc["gns", "bd_rate_psnr"] == pytest.approx(-20.0)
    assert t.loc["edim", "bd_psnr"] == pytest.approx(0.5)
    assert t.loc["edim", "bd_ssim"] == pytest.approx(0.005)
    assert math.isnan(t.loc["gns", "bd_rate_psnr_std"])  # one seed: no spread
    for m in ("argp", "3dgs"):
        assert math.isnan(t.loc[m, "bd_rate_psnr"]) and "at least 4" in t.loc[m, "note"]
    assert t.loc["argp", "n_points"] == 2 and t.loc["gns", "n_points"] == 5


def test_bd_tables_seeds_and_mean_over_datasets():
    df = _df(seeds=(0, 1, 2), datasets=("dsA", "dsB"))
    t = bd_tables(df)
    assert set(t["dataset"]) == {"dsA", "dsB", MEAN_ROW}
    gns = t[t["method"] == "gns"].set_index("dataset")
    per_seed = [(0.8 + 0.01 * s - 1) * 100 for s in (0, 1, 2)]
    for ds in ("dsA", "dsB", MEAN_ROW):
        assert gns.loc[ds, "bd_rate_psnr"] == pytest.approx(np.mean(per_seed))
        assert gns.loc[ds, "bd_rate_psnr_std"] == pytest.approx(np.std(per_seed, ddof=1))
        assert gns.loc[ds, "n_seeds"] == 3
    # a method missing on one dataset has no mean (never a partial mean)
    part = bd_tables(df[~((df["method"] == "edim") & (df["dataset"] == "dsB"))])
    edim = part[part["method"] == "edim"].set_index("dataset")
    assert edim.loc["dsA", "bd_psnr"] == pytest.approx(0.5)
    assert math.isnan(edim.loc[MEAN_ROW, "bd_psnr"]) and "dsB" in edim.loc[MEAN_ROW, "note"]


def test_missing_scene_gives_no_dataset_value():
    df = _df()
    df = df[~((df["method"] == "edim") & (df["scene"] == "s2"))]
    t = bd_table(df, "dsA").set_index("method")
    assert math.isnan(t.loc["edim", "bd_psnr"]) and "s2" in t.loc["edim", "note"]


def test_bd_markdown():
    md = bd_markdown(bd_tables(_df(seeds=(0, 1))), "dsA")
    assert "hgsc@3dgs (anchor)" in md and "BD-rate (PSNR)" in md and "PCHIP" in md
    gns_line = next(ln for ln in md.splitlines() if ln.startswith("| gns "))
    assert "±" in gns_line and "-19.5" in gns_line  # mean of -20 and -19 %
    argp_line = next(ln for ln in md.splitlines() if ln.startswith("| argp "))
    assert "–" in argp_line and "at least 4" in argp_line
    assert "2 seeds" in md
