"""Rule fidelity_table: our runs beside the authors' code's (CSV, Markdown, HTML)."""
import _setup  # noqa: F401

with _setup.logged(snakemake):  # noqa: F821
    from pathlib import Path

    import pandas as pd

    from gs.report.fidelity import fidelity_markdown, fidelity_table
    from gs.report.html import markdown_to_html

    sm = snakemake  # noqa: F821
    table = fidelity_table(pd.read_csv(sm.input.csv))
    table.to_csv(sm.output.csv, index=False)
    md = "# Ours vs the authors' code\n\n" + fidelity_markdown(table)
    Path(sm.output.md).write_text(md)
    Path(sm.output.html).write_text(markdown_to_html(md, title="Ours vs the authors' code", table_id="fidelity"))
    print(f"{len(table)} pairs -> {sm.output.csv}")
