# Report: results table, per-dataset tables in the papers' style and the 3DGS.zip survey
# schema, Bjontegaard-delta tables, rate-distortion plots, comparison strips and provenance.
# Every item is registered with report() so `snakemake --report results/report.html` shows it
# with its caption.


rule results_table:
    input:
        metrics_files,
    output:
        csv=report(
            f"{RESULTS}/tables/results.csv",
            caption="../report/results_csv.rst",
            category="1. Results",
            subcategory="All runs",
            labels={"table": "all runs (CSV)"},
        ),
        html=report(
            f"{RESULTS}/tables/results.html",
            caption="../report/results_table.rst",
            category="1. Results",
            subcategory="All runs",
            labels={"table": "all runs"},
        ),
    log:
        f"{LOGS}/report/results_table.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        CPU_ENV
    script:
        "../workflow_scripts/results_table.py"


rule dataset_tables:
    input:
        csv=rules.results_table.output.csv,
    output:
        survey=report(
            f"{RESULTS}/tables/{{dataset}}_survey.csv",
            caption="../report/survey_table.rst",
            category="2. Tables",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "3DGS.zip survey CSV"},
        ),
        md=f"{RESULTS}/tables/{{dataset}}.md",
        tex=f"{RESULTS}/tables/{{dataset}}.tex",
        html=report(
            f"{RESULTS}/tables/{{dataset}}.html",
            caption="../report/dataset_table.rst",
            category="2. Tables",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "paper style (mean over scenes)"},
        ),
    params:
        paper_results=config["paper_results"],
        title=dataset_title,
    log:
        f"{LOGS}/report/tables_{{dataset}}.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        CPU_ENV
    script:
        "../workflow_scripts/dataset_tables.py"


rule bd_tables:
    input:
        csv=rules.results_table.output.csv,
    output:
        csv=f"{RESULTS}/tables/{{dataset}}_bd.csv",
        md=f"{RESULTS}/tables/{{dataset}}_bd.md",
        html=report(
            f"{RESULTS}/tables/{{dataset}}_bd.html",
            caption="../report/bd_table.rst",
            category="2. Tables",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "BD-rate / BD-PSNR / BD-SSIM vs anchor"},
        ),
    params:
        anchor=config["bd_anchor"],
        title=dataset_title,
    log:
        f"{LOGS}/report/bd_{{dataset}}.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        CPU_ENV
    script:
        "../workflow_scripts/bd_tables.py"


rule bd_summary:
    input:
        csv=rules.results_table.output.csv,
    output:
        csv=f"{RESULTS}/tables/bd_summary.csv",
        md=f"{RESULTS}/tables/bd_summary.md",
        html=report(
            f"{RESULTS}/tables/bd_summary.html",
            caption="../report/bd_summary.rst",
            category="2. Tables",
            subcategory="All datasets",
            labels={"dataset": "all (mean)", "table": "BD-rate / BD-PSNR / BD-SSIM vs anchor"},
        ),
    params:
        anchor=config["bd_anchor"],
    log:
        f"{LOGS}/report/bd_summary.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        CPU_ENV
    script:
        "../workflow_scripts/bd_tables.py"


rule rd_plots:
    input:
        csv=rules.results_table.output.csv,
    output:
        png=report(
            f"{RESULTS}/plots/{{dataset}}_rd.png",
            caption="../report/rd_plot.rst",
            category="3. Rate-distortion",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "format": "PNG"},
        ),
        svg=report(
            f"{RESULTS}/plots/{{dataset}}_rd.svg",
            caption="../report/rd_plot.rst",
            category="3. Rate-distortion",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "format": "SVG"},
        ),
    params:
        paper_results=config["paper_results"],
        metrics=config["report_metrics"],
        spread=config["rd_spread"],
        title=dataset_title,
    log:
        f"{LOGS}/report/rd_{{dataset}}.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        CPU_ENV
    script:
        "../workflow_scripts/rd_plots.py"


rule strips:
    input:
        metrics=scene_metrics,
        scene=rules.prepare_scene.output[0],
    output:
        report(
            f"{RESULTS}/strips/{{dataset}}/{{scene}}.png",
            caption="../report/strip.rst",
            category="4. Comparison strips",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "scene": "{scene}"},
        ),
    params:
        views=config["strip_views"],
    log:
        f"{LOGS}/report/strips_{{dataset}}_{{scene}}.log",
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        CPU_ENV
    script:
        "../workflow_scripts/strips.py"


rule provenance:
    input:
        metrics_files,
    output:
        json=f"{RESULTS}/provenance.json",
        html=report(
            f"{RESULTS}/provenance.html",
            caption="../report/provenance.rst",
            category="5. Provenance",
            labels={"what": "versions, commit, protocol"},
        ),
    params:
        protocol=protocol_summary,
        config=config,
    log:
        f"{LOGS}/report/provenance.log",
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        CPU_ENV
    script:
        "../workflow_scripts/provenance.py"


rule deviations:
    input:
        [str(METHODS[m].deviations_path) for m in pipeline.selected_methods(config) if METHODS[m].deviations_path],
    output:
        csv=f"{RESULTS}/tables/deviations.csv",
        html=report(
            f"{RESULTS}/tables/deviations.html",
            caption="../report/deviations.rst",
            category="5. Provenance",
            labels={"what": "deviations from the authors' code"},
        ),
    params:
        methods=list(pipeline.selected_methods(config)),
    log:
        f"{LOGS}/report/deviations.log",
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        CPU_ENV
    script:
        "../workflow_scripts/deviations.py"


rule fidelity_table:
    input:
        csv=rules.results_table.output.csv,
    output:
        csv=f"{RESULTS}/tables/fidelity.csv",
        md=f"{RESULTS}/tables/fidelity.md",
        html=report(
            f"{RESULTS}/tables/fidelity.html",
            caption="../report/fidelity.rst",
            category="5. Provenance",
            labels={"what": "ours vs the authors' code"},
        ),
    log:
        f"{LOGS}/report/fidelity.log",
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        CPU_ENV
    script:
        "../workflow_scripts/fidelity_table.py"
