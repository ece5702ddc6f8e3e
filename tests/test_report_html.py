"""Open the generated Snakemake report in headless Chromium, click through it as a person
would, and check that the results table and an RD plot are really rendered in the page.

Needs Debian's chromium + chromium-driver and the selenium package; skipped without them
outside CI (in CI, where .ci/run installs them, their absence is a failure). Screenshots are
kept in test-artifacts/."""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
import time

import pytest

from e2e_helpers import ARTIFACTS, tiny_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _need_browser():
    missing = [n for n, ok in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not ok]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        msg = f"report browser test needs {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(msg + " (CI installs them in .ci/run)")
        pytest.skip(msg)


@pytest.fixture()
def browser():
    _need_browser()
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium-manager download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gs-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1400,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(fn, timeout=30.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            got = fn()
            if got:
                return got
        except Exception:  # element not there yet / stale while React re-renders
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _open_result(driver, report, category: str, label: str):
    """Home page -> category in the menu -> the eye button of the row labelled ``label``."""
    from selenium.webdriver.common.by import By

    driver.get("about:blank")  # a fresh load: same-document navigation would keep the app's state
    driver.get(report.as_uri())
    _wait(lambda: driver.find_element(By.XPATH, f"//a[contains(., '{category}')]"),
          what=f"menu entry {category!r}").click()
    row = _wait(lambda: driver.find_element(By.XPATH, f"//tr[td[contains(normalize-space(.), '{label}')]]"),
                what=f"result row {label!r}")
    row.find_element(By.XPATH, ".//a[@iconname='eye']").click()


@pytest.mark.slow
def test_report_shows_results_table_and_rd_plot(browser):
    from selenium.webdriver.common.by import By

    work = tiny_run()
    report = work / "report.html"
    with open(work / "results" / "tables" / "results.csv") as f:
        n_runs = len(list(csv.DictReader(f)))
    ARTIFACTS.mkdir(exist_ok=True)

    # the results table: an HTML result shown in a frame
    _open_result(browser, report, "1. Results", "all runs")
    frame = _wait(lambda: browser.find_element(By.TAG_NAME, "iframe"), what="results frame")
    browser.save_screenshot(str(ARTIFACTS / "report_results_table.png"))
    browser.switch_to.frame(frame)
    table = _wait(lambda: browser.find_element(By.ID, "results-table"), what="results table in the frame")
    headers = [th.text.strip() for th in table.find_elements(By.TAG_NAME, "th")]
    assert {"method", "variant", "psnr", "size_bytes"} <= set(headers), headers
    body_rows = table.find_elements(By.XPATH, ".//tbody/tr")
    assert len(body_rows) == n_runs
    assert table.size["height"] > 20 * n_runs  # laid out, not hidden
    browser.switch_to.default_content()

    # an RD plot: the dataset's row (format toggle PNG | SVG, PNG first), shown as an image
    # that the browser decoded
    _open_result(browser, report, "3. Rate-distortion", "synthetic")
    img = _wait(lambda: browser.find_element(By.XPATH, "//img[starts-with(@src, 'data:image/png')]"),
                what="RD plot image")
    _wait(lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 100,
          what="RD plot decoded")
    assert img.size["width"] > 100 and img.size["height"] > 100
    browser.save_screenshot(str(ARTIFACTS / "report_rd_plot.png"))


# ---------------------------------------------------------------------------- the pages themselves
def test_markdown_table_page():
    from gs.report.html import markdown_to_html

    md = ("### Dataset\n\n| Method | PSNR |\n|---|---:|\n| a | **30.00** |\n| *b (paper)* | <u>29.00</u> |\n"
          "| <script>x</script> | 1 |\n\nPaper rows: somewhere  \nOver 3 seeds  \n")
    html = markdown_to_html(md, title="GS Bench: t", table_id="table-ds")
    assert '<table id="table-ds">' in html and html.count("<tr>") == 4
    assert "<strong>30.00</strong>" in html and "<u>29.00</u>" in html and "<em>b (paper)</em>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html  # raw HTML is shown, not run
    assert "<h3>" not in html and "<title>GS Bench: t</title>" in html  # the page title replaces the heading
    assert '<p class="note">Paper rows: somewhere<br />' in html and "Over 3 seeds" in html


def test_results_table_and_provenance_pages(tmp_path):
    import pandas as pd

    from gs.report.html import provenance_html, write_html_table

    df = pd.DataFrame({"method": ["3dgs", "<b>x</b>"], "psnr": [30.123456, float("nan")], "size_bytes": [12345678.0, 1.5]})
    html = write_html_table(df, tmp_path / "t.html", title="all runs", table_id="results-table").read_text()
    assert 'id="results-table"' in html and "30.12" in html and "12345678" in html and "–" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    info = {"git_commit": "abc", "versions": {"torch": "2"}, "protocol": {"test_every": 8}, "config": {},
            "runs": [{"dataset": "d", "scene": "s", "method": "gns", "variant": "v",
                      "starts_from": {"run": "3dgs/default", "iteration": 15}}]}
    page = provenance_html(info)
    assert "<code>abc</code>" in page and "Shared training prefixes" in page and "3dgs/default at iteration 15" in page
