"""Rule deviations: each selected method's differences from its authors' code (CSV + HTML)."""
import _setup  # noqa: F401

with _setup.logged(snakemake):  # noqa: F821
    from html import escape
    from pathlib import Path

    from gs.methods.registry import deviations_table

    sm = snakemake  # noqa: F821
    df = deviations_table(list(sm.params.methods))
    df.to_csv(sm.output.csv, index=False)
    parts = ["<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Deviations from the authors' code</title>"
             "</head>\n<body>\n<h2>Deviations from the authors' code</h2>"]
    for method, rows in df.groupby("method", sort=False):
        first = rows.iloc[0]
        if first["repository"] == "not recorded":
            parts.append(f"<h3>{escape(method)}</h3><p>No deviations file for this method.</p>")
            continue
        parts.append(f"<h3>{escape(method)}</h3><p>upstream: <a href=\"{escape(first['repository'])}\">"
                     f"{escape(first['repository'])}</a> at <code>{escape(str(first['commit']))}</code></p>")
        table = rows.drop(columns=["method", "repository", "commit"]).dropna(how="all")
        parts.append(table.to_html(index=False, border=1, na_rep="", escape=True))
    parts.append("</body></html>\n")
    Path(sm.output.html).write_text("\n".join(parts))
    print(f"{len(df)} rows for {df['method'].nunique()} methods")
