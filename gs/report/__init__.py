"""Reporting: tables (CSV / survey CSV / Markdown / LaTeX), RD plots, comparison strips, and the
HTML pages of the Snakemake report (:mod:`gs.report.html`).

Submodules import matplotlib and PIL lazily where they can; nothing here needs a GPU.
"""

from gs.report.tables import (
    SURVEY_HEADER,
    aggregate,
    collect_results,
    latex_table,
    load_paper_results,
    markdown_table,
    write_results_csv,
    write_survey_csvs,
    write_tables,
)

__all__ = [
    "SURVEY_HEADER", "aggregate", "collect_results", "latex_table", "load_paper_results",
    "markdown_table", "write_results_csv", "write_survey_csvs", "write_tables",
]
