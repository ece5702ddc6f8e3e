# The authors' code as a second implementation (implementations: [ours, upstream]): one rule
# for every method with an upstream recipe (gs/upstream/recipes.py); {umethod} only matches
# those. It writes the same two files as our training rules, in "{method}~upstream/{variant}"
# folders, so the evaluate rule scores them like any other run. The clone and the built
# extensions are cached under {data_dir}/upstream/ (per commit, and per CUDA/torch version).


def upstream_params(wildcards):
    variant = pipeline.split_seed(wildcards.variant)[0]
    return pipeline.method_params(config, wildcards.umethod, variant, wildcards.dataset, wildcards.scene)


def upstream_baseline_stats(wildcards):
    """The upstream baseline's train_stats.json (same scene and seed) when this method takes
    params from the baseline's run (GNS: its final count), else nothing."""
    if not pipeline.baseline_inputs(wildcards.umethod):
        return []
    base, bvariant = pipeline.baseline_method()
    seed = pipeline.split_seed(wildcards.variant)[1]
    run = pipeline.Run(wildcards.dataset, wildcards.scene, pipeline.upstream_id(base), bvariant, seed)
    return [f"{run.dir(RESULTS)}/train_stats.json"]


def upstream_baseline_params(wildcards):
    return pipeline.baseline_inputs(wildcards.umethod)


rule train_upstream:
    input:
        scene=rules.prepare_scene.output[0],
        baseline=upstream_baseline_stats,
    output:
        model=f"{RESULTS}/{{dataset}}/{{scene}}/{{umethod}}~upstream/{{variant}}/point_cloud.ply",
        stats=f"{RESULTS}/{{dataset}}/{{scene}}/{{umethod}}~upstream/{{variant}}/train_stats.json",
    params:
        params=upstream_params,
        from_baseline=upstream_baseline_params,
        settings=train_settings,
        cache=f"{DATA}/upstream",
    log:
        f"{LOGS}/train/{{dataset}}/{{scene}}/{{umethod}}~upstream/{{variant}}.log",
    benchmark:
        f"{BENCH}/train/{{dataset}}/{{scene}}/{{umethod}}~upstream/{{variant}}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=train_mem,
        runtime=train_runtime,
    conda:
        GPU_ENV
    script:
        "../workflow_scripts/train_upstream.py"
