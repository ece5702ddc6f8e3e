# Training: one rule for every training method; {method} only matches registered training
# methods. The trainer keeps checkpoints/ (not a declared output), so a rerun after a killed
# job resumes instead of starting over. The baseline has its own rule only because it also
# declares the prefix checkpoints that other methods start from (NSVQ-GS: the baseline's
# state at 15k, "init_from_baseline_at" in the registry): a DAG edge, not a second training.


rule train_baseline:
    input:
        scene=rules.prepare_scene.output[0],
    output:
        model=f"{RESULTS}/{{dataset}}/{{scene}}/{{method}}/{{variant}}/point_cloud.ply",
        stats=f"{RESULTS}/{{dataset}}/{{scene}}/{{method}}/{{variant}}/train_stats.json",
        **{f"prefix_{it}": f"{RESULTS}/{{dataset}}/{{scene}}/{{method}}/{{variant}}/prefix_{it}.pt"
           for it in PREFIX_ITERATIONS},
    wildcard_constraints:
        method=BASELINE,
    params:
        params=train_params,
        from_baseline={},
        settings=train_settings,
        init=None,
    log:
        f"{LOGS}/train/{{dataset}}/{{scene}}/{{method}}/{{variant}}.log",
    benchmark:
        f"{BENCH}/train/{{dataset}}/{{scene}}/{{method}}/{{variant}}.tsv"
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=train_mem,
        runtime=train_runtime,
    conda:
        GPU_ENV
    script:
        "../workflow_scripts/train.py"


rule train:
    input:
        scene=rules.prepare_scene.output[0],
        baseline=baseline_stats,
        prefix=baseline_prefix,
    output:
        model=f"{RESULTS}/{{dataset}}/{{scene}}/{{method}}/{{variant}}/point_cloud.ply",
        stats=f"{RESULTS}/{{dataset}}/{{scene}}/{{method}}/{{variant}}/train_stats.json",
    wildcard_constraints:
        method=NON_BASELINE,
    params:
        params=train_params,
        from_baseline=baseline_params,
        settings=train_settings,
        init=prefix_start,
    log:
        f"{LOGS}/train/{{dataset}}/{{scene}}/{{method}}/{{variant}}.log",
    benchmark:
        f"{BENCH}/train/{{dataset}}/{{scene}}/{{method}}/{{variant}}.tsv"
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=train_mem,
        runtime=train_runtime,
    conda:
        GPU_ENV
    script:
        "../workflow_scripts/train.py"
