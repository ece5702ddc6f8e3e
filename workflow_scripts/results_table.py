"""Rule results_table: one row per run (CSV + an HTML table for the report)."""
import _setup  # noqa: F401

with _setup.logged(snakemake):  # noqa: F821
    from gs.report.html import write_html_table
    from gs.report.tables import collect_results, write_results_csv

    sm = snakemake  # noqa: F821
    df = collect_results(sm.input)
    write_results_csv(df, sm.output.csv)
    cols = ["dataset", "scene", "method", "variant", "seed", "psnr", "ssim", "lpips", "size_bytes", "num_gaussians",
            "train_seconds", "encode_seconds", "decode_seconds", "fps", "backend", "device"]
    df = df.sort_values(["dataset", "scene", "method", "variant", "seed"])
    write_html_table(df[[c for c in cols if c in df.columns]], sm.output.html, title="GS Bench: all runs",
                     table_id="results-table")
    print(f"{len(df)} runs -> {sm.output.csv}, {sm.output.html}")
