"""Rule rd_plots: quality against size (log axis) for one dataset, PNG + SVG."""
import _setup  # noqa: F401

with _setup.logged(snakemake):  # noqa: F821
    from pathlib import Path

    import pandas as pd

    from gs.report.plots import rd_figure, save_figure
    from gs.report.tables import aggregate, load_paper_results

    sm = snakemake  # noqa: F821
    dataset = sm.wildcards.dataset
    df = pd.read_csv(sm.input.csv)
    df = df[df["dataset"] == dataset]
    paper_dir = Path(sm.params.paper_results)
    paper = load_paper_results(paper_dir) if paper_dir.is_dir() else None
    spread = None if sm.params.spread == "none" else sm.params.spread  # seed spread (NaN with one seed)
    fig = rd_figure(aggregate(df), dataset, paper, metrics=list(sm.params.metrics), spread=spread,
                    title=sm.params.title)
    stem = Path(sm.output.png).with_suffix("")
    save_figure(fig, stem, formats=("png", "svg"))
