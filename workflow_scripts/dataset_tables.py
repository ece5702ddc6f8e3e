"""Rule dataset_tables: one dataset's survey CSV, Markdown, LaTeX and HTML tables."""
import _setup  # noqa: F401

with _setup.logged(snakemake):  # noqa: F821
    from pathlib import Path

    import pandas as pd

    from gs.report.html import markdown_to_html
    from gs.report.tables import aggregate, latex_table, load_paper_results, markdown_table, survey_table

    sm = snakemake  # noqa: F821
    dataset = sm.wildcards.dataset
    df = pd.read_csv(sm.input.csv)
    df = df[df["dataset"] == dataset]
    paper_dir = Path(sm.params.paper_results)
    paper = load_paper_results(paper_dir) if paper_dir.is_dir() else None
    if paper is None:
        print(f"no paper results folder at {paper_dir}: tables show our rows only")
    agg = aggregate(df)
    survey_table(agg).to_csv(sm.output.survey, index=False)
    md = markdown_table(agg, dataset, paper)
    Path(sm.output.md).write_text(md)
    Path(sm.output.tex).write_text(latex_table(agg, dataset, paper))
    Path(sm.output.html).write_text(markdown_to_html(md, title=f"GS Bench: {sm.params.title}",
                                                     table_id=f"table-{dataset}"))
