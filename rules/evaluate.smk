# Evaluation: render the test views of any run (training method, trained codec, codec@base)
# and write its metrics JSON; the model and statistics it reads come from evaluate_inputs.


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        metrics=f"{RESULTS}/{{dataset}}/{{scene}}/{{run}}/{{rvariant}}/metrics.json",
        renders=directory(f"{RESULTS}/{{dataset}}/{{scene}}/{{run}}/{{rvariant}}/renders"),
    params:
        settings=train_settings,
    log:
        f"{LOGS}/evaluate/{{dataset}}/{{scene}}/{{run}}/{{rvariant}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{dataset}}/{{scene}}/{{run}}/{{rvariant}}.tsv"
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=eval_mem,
        runtime=eval_runtime,
    conda:
        GPU_ENV
    script:
        "../workflow_scripts/evaluate.py"
