# Training: one rule for every training method; {method} only matches registered training
# methods. The trainer keeps checkpoints/ (not a declared output), so a rerun after a killed
# job resumes instead of starting over.


rule train:
    input:
        scene=rules.prepare_scene.output[0],
        baseline=baseline_stats,
    output:
        model=f"{RESULTS}/{{dataset}}/{{scene}}/{{method}}/{{variant}}/point_cloud.ply",
        stats=f"{RESULTS}/{{dataset}}/{{scene}}/{{method}}/{{variant}}/train_stats.json",
    params:
        params=train_params,
        from_baseline=baseline_params,
        settings=train_settings,
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
