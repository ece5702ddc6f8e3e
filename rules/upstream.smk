# The authors' code as a second implementation (implementations: [ours, upstream]): one rule
# for every method with an upstream recipe (gs/upstream/recipes.py); {umethod} only matches
# those. It writes the same two files as our training rules, in "{method}~upstream/{variant}"
# folders, so the evaluate rule scores them like any other run. The clone and the built
# extensions are cached under {data_dir}/upstream/ (per commit, and per CUDA/torch version).
# build_upstream sets the checkout up and compiles its extensions apart from training, so a
# compile never holds a GPU slot; offline machines take the sources from upstream_sources.
# A codec whose authors' code compresses a trained model (HGSC) runs in compress_upstream, over
# our model of the same scene and seed: "{codec}~upstream@{base}/{cvariant}@{bvariant}".


rule build_upstream:
    output:
        f"{DATA}/upstream/built/{{urecipe}}.json",
    params:
        cache=lambda w, output: os.path.dirname(os.path.dirname(output[0])),  # {data_dir}/upstream
        sources=config.get("upstream_sources"),
    log:
        f"{LOGS}/build_upstream/{{urecipe}}.log",
    threads: 4
    conda:
        GPU_ENV
    script:
        "../workflow_scripts/build_upstream.py"


rule train_upstream:
    input:
        scene=rules.prepare_scene.output[0],
        baseline=baseline_stats,
        built=f"{DATA}/upstream/built/{{umethod}}.json",
    output:
        model=f"{RESULTS}/{{dataset}}/{{scene}}/{{umethod}}~upstream/{{variant}}/point_cloud.ply",
        stats=f"{RESULTS}/{{dataset}}/{{scene}}/{{umethod}}~upstream/{{variant}}/train_stats.json",
    params:
        params=train_params,
        from_baseline=baseline_params,
        settings=train_settings,
        cache=lambda w, input: os.path.dirname(os.path.dirname(input.built)),  # {data_dir}/upstream
        sources=config.get("upstream_sources"),
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


rule compress_upstream:
    input:
        model=base_model,
        scene=rules.prepare_scene.output[0],
        built=f"{DATA}/upstream/built/{{ucodec}}.json",
    output:
        model=f"{RESULTS}/{{dataset}}/{{scene}}/{{ucodec}}~upstream@{{base}}/{{cvariant}}@{{bvariant}}/point_cloud.ply",
        stats=f"{RESULTS}/{{dataset}}/{{scene}}/{{ucodec}}~upstream@{{base}}/{{cvariant}}@{{bvariant}}/codec_stats.json",
    params:
        params=upstream_codec_params,
        settings=train_settings,
        cache=lambda w, input: os.path.dirname(os.path.dirname(input.built)),  # {data_dir}/upstream
        sources=config.get("upstream_sources"),
    log:
        f"{LOGS}/compress/{{dataset}}/{{scene}}/{{ucodec}}~upstream@{{base}}/{{cvariant}}@{{bvariant}}.log",
    benchmark:
        f"{BENCH}/compress/{{dataset}}/{{scene}}/{{ucodec}}~upstream@{{base}}/{{cvariant}}@{{bvariant}}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=eval_mem,
        runtime=eval_runtime,
    conda:
        GPU_ENV
    script:
        "../workflow_scripts/compress_upstream.py"
