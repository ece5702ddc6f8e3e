"""The README's measured-results section is written from a results.csv (gs.report.readme), and
the section in the repository matches the CSV it names."""

from __future__ import annotations

import pandas as pd
import pytest

from e2e_helpers import REPO
from gs.report.readme import BEGIN, END, current_section, results_section, update_readme


def _csv(tmp_path):
    rows = [
        {"dataset": "local", "scene": "fern", "method": "3dgs", "variant": "default", "psnr": 26.1, "ssim": 0.87,
         "num_gaussians": 470000, "size_bytes": 117e6, "train_seconds": 40.0, "solo_timings": True,
         "delta_psnr_ref": None, "size_ratio_ref": None, "flag": None, "device": "H200", "iterations": 7000,
         "git_commit": "abc"},
        {"dataset": "local", "scene": "fern", "method": "gns", "variant": "15pct", "psnr": 26.5, "ssim": 0.88,
         "num_gaussians": 70000, "size_bytes": 17e6, "train_seconds": 20.0, "solo_timings": False,
         "delta_psnr_ref": 0.4, "size_ratio_ref": 6.9, "flag": None, "device": "H200", "iterations": 7000,
         "git_commit": "abc"},
        {"dataset": "local", "scene": "fern", "method": "hgsc@3dgs", "variant": "p0_b10@default", "psnr": 25.8,
         "ssim": 0.86, "num_gaussians": 470000, "size_bytes": 20e6, "train_seconds": 40.0, "solo_timings": False,
         "delta_psnr_ref": -0.3, "size_ratio_ref": 5.85, "flag": None, "device": "H200", "iterations": 7000,
         "git_commit": "abc"},
        {"dataset": "local", "scene": "fern", "method": "edim", "variant": "decomp_0.1", "psnr": 14.6, "ssim": 0.4,
         "num_gaussians": 173, "size_bytes": 40000, "train_seconds": 30.0, "solo_timings": True,
         "delta_psnr_ref": -11.5, "size_ratio_ref": 2900, "flag": "-11.5 dB vs 3dgs", "device": "H200",
         "iterations": 7000, "git_commit": "abc"},
    ]
    p = tmp_path / "results.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


def test_section_is_written_between_the_markers_from_the_csv(tmp_path):
    csv = _csv(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"# Tool\n\nintro\n\n{BEGIN}\nold numbers 99.99\n{END}\n\n## After\n")
    assert update_readme(readme, results_section(csv, "On one GPU", "Made with snakemake."))
    text = readme.read_text()
    assert "old numbers" not in text and text.startswith("# Tool") and text.endswith("## After\n")
    assert "| 3dgs default | 26.10 | 0.8700 | 470,000 | 117.00 |" in text
    assert "| hgsc p0_b10 over 3dgs default | 25.80 |" in text and "| -0.30 | 5.8 | – | – |" in text
    assert "| 3dgs default | 26.10 | 0.8700 | 470,000 | 117.00 | – | – | 40 | – |" in text
    assert "⚠ -11.5 dB vs 3dgs" in text and "| 20† | – |" in text
    assert not update_readme(readme, results_section(csv, "On one GPU", "Made with snakemake."))  # idempotent
    body, title, note, src = current_section(readme)
    assert (title, note, src) == ("On one GPU", "Made with snakemake.", csv.as_posix())


def test_missing_markers_name_the_file(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="README.md: needs the two marker lines"):
        update_readme(readme, "x\n")


def test_repository_readme_matches_its_csv():
    """README numbers come from the committed CSV: regenerating the section changes nothing."""
    found = current_section(REPO / "README.md")
    if found is None:
        pytest.skip("the README has no measured-results section yet")
    body, title, note, src = found
    assert (REPO / src).is_file(), f"README names {src}, which is not in the repository"
    import os

    cwd = os.getcwd()
    os.chdir(REPO)  # the section names the CSV relative to the repository
    try:
        assert results_section(src, title, note) == body
    finally:
        os.chdir(cwd)
