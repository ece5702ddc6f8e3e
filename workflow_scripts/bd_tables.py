"""Rules bd_tables / bd_summary: Bjontegaard deltas (BD-rate, BD-PSNR, BD-SSIM) of every
method's RD curve against the anchor; one dataset (with a ``dataset`` wildcard) or the mean
over datasets (without). CSV (every dataset + the mean, long format), Markdown, HTML."""
import _setup  # noqa: F401

with _setup.logged(snakemake):  # noqa: F821
    from pathlib import Path

    import pandas as pd

    from gs.report.html import markdown_to_html
    from gs.report.bdrate import MEAN_ROW, bd_markdown, bd_tables

    sm = snakemake  # noqa: F821
    df = pd.read_csv(sm.input.csv)
    anchor = dict(sm.params.anchor) if isinstance(sm.params.anchor, dict) else sm.params.anchor
    dataset = sm.wildcards.get("dataset")
    if dataset is not None:
        df = df[df["dataset"] == dataset]
    table = bd_tables(df, anchor=anchor)
    key, title = (dataset, sm.params.title) if dataset is not None else (MEAN_ROW, "Mean over datasets")
    if dataset is not None:
        table = table[table["dataset"] == dataset]
    table.to_csv(sm.output.csv, index=False)
    md = bd_markdown(table, key, title=title)
    Path(sm.output.md).write_text(md)
    Path(sm.output.html).write_text(markdown_to_html(md, title=f"GS Bench: {title}, Bjøntegaard deltas",
                                                     table_id=f"bd-{dataset or 'summary'}"))
    print(md)
