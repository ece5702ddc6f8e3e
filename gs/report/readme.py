"""Write the README's measured-results section from a pipeline run's ``results.csv``.

The section sits between two markers in the README; everything between them is replaced, so
the numbers a reader sees and the CSV they come from never disagree (a test checks the README
in the repository against the CSV committed beside it)::

    python -m gs.report.readme RESULTS_CSV README.md --title "..." [--note "..."]

Per scene, one row per run: PSNR, SSIM, #Gaussians, size, the change against the run it
starts from (a codec: the model it compresses; other methods: the baseline), training
seconds (marked † when the GPU was shared) and the failure flag of the tables.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

BEGIN = "<!-- measured-results:begin (written by python -m gs.report.readme; do not edit) -->"
END = "<!-- measured-results:end -->"


def _num(v, fmt: str) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(x) else format(x, fmt)


def _label(r: pd.Series) -> str:
    if "@" in str(r["method"]):
        codec, base = str(r["method"]).split("@", 1)
        cv, bv = (str(r["variant"]).split("@", 1) + ["default"])[:2]
        return f"{codec} {cv} over {base} {bv}"
    return f"{r['method']} {r['variant']}"


def results_section(csv: str | Path, title: str, note: str | None = None) -> str:
    """The Markdown of the section (without the markers)."""
    from gs.report.tables import method_order

    df = pd.read_csv(csv)
    if df.empty:
        raise ValueError(f"{csv}: no runs in it")
    lines = [f"### {title}", ""]
    if note:
        lines += [note, ""]
    device = ", ".join(sorted(str(d) for d in df["device"].dropna().unique())) if "device" in df else ""
    commits = ", ".join(sorted({str(c)[:12] for c in df["git_commit"].dropna()})) if "git_commit" in df else ""
    its = ", ".join(str(int(i)) for i in sorted(df["iterations"].dropna().unique())) if "iterations" in df else ""
    lines += [f"From `{Path(csv).as_posix()}` ({len(df)} runs; device: {device or 'unknown'}; "
              f"iterations: {its or 'unknown'}; code: {commits or 'unknown'}).", ""]
    order = {m: i for i, m in enumerate(method_order(df["method"].unique()))}
    for (dataset, scene), rows in df.groupby(["dataset", "scene"], sort=True):
        rows = rows.assign(_o=rows["method"].map(order)).sort_values(["_o", "variant"])
        lines += [f"**{dataset}/{scene}**", "",
                  "| run | PSNR | SSIM | #Gaussians | MB | ΔPSNR vs input | × smaller | train s | enc / dec s | flag |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for _, r in rows.iterrows():
            train = "–" if "@" in str(r["method"]) else _num(r.get("train_seconds"), ".0f")  # a codec trains nothing
            codec = "–" if pd.isna(r.get("encode_seconds")) else (
                f"{_num(r.get('encode_seconds'), '.2f')} / {_num(r.get('decode_seconds'), '.2f')}")
            if train != "–" and (r.get("solo_timings") is False or str(r.get("solo_timings")) == "False"):
                train += "†"
            flag = r.get("flag")
            lines.append("| " + " | ".join([
                _label(r), _num(r["psnr"], ".2f"), _num(r["ssim"], ".4f"), _num(r["num_gaussians"], ",.0f"),
                _num(r["size_bytes"] / 1e6 if pd.notna(r["size_bytes"]) else None, ".2f"),
                _num(r.get("delta_psnr_ref"), "+.2f"), _num(r.get("size_ratio_ref"), ".1f"), train, codec,
                "⚠ " + str(flag) if isinstance(flag, str) and flag else ""]) + " |")
        lines.append("")
    lines.append("LPIPS is recorded as null with its reason where the VGG weights are not installed. "
                 "† = trained on a GPU shared with other jobs (not a solo timing).")
    return "\n".join(lines).rstrip() + "\n"


def update_readme(readme: str | Path, section: str) -> bool:
    """Replace the text between :data:`BEGIN` and :data:`END` in ``readme``; return whether it
    changed. Raises ValueError naming the file when the markers are missing."""
    readme = Path(readme)
    text = readme.read_text()
    if BEGIN not in text or END not in text or text.index(BEGIN) > text.index(END):
        raise ValueError(f"{readme}: needs the two marker lines\n{BEGIN}\n{END}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{section}{END}{tail}"
    if new != text:
        tmp = readme.with_name(readme.name + ".tmp")
        tmp.write_text(new)
        tmp.replace(readme)
    return new != text


def current_section(readme: str | Path) -> tuple[str, str, str | None, str] | None:
    """(section text, title, note, csv path) of the section in ``readme``, or None when the
    section is empty; the csv path is relative to the README's folder."""
    text = Path(readme).read_text()
    if BEGIN not in text or END not in text:
        return None
    body = text.split(BEGIN, 1)[1].split(END, 1)[0].lstrip("\n")
    if not body.strip():
        return None
    paras = body.split("\n\n")
    title = paras[0].removeprefix("### ").strip()
    note = paras[1].strip() if not paras[1].startswith("From `") else None
    src = next(p for p in paras if p.startswith("From `"))
    return body, title, note, src.split("`", 2)[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gs.report.readme", description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", help="results.csv of a pipeline run")
    ap.add_argument("readme", help="the Markdown file holding the two marker lines")
    ap.add_argument("--title", default="Measured results")
    ap.add_argument("--note", default=None, help="one paragraph under the title (how the run was made)")
    a = ap.parse_args(argv)
    try:
        changed = update_readme(a.readme, results_section(a.csv, a.title, a.note))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{a.readme}: {'updated' if changed else 'already up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
