# Compression: a post-training codec over any trained model ({codec}@{base}), and the own
# bitstream of a training method that brings a codec (written to codec/ inside its run).


rule compress:
    input:
        model=base_model,
        scene=rules.prepare_scene.output[0],
    output:
        model=f"{RESULTS}/{{dataset}}/{{scene}}/{{codec}}@{{base}}/{{cvariant}}@{{bvariant}}/point_cloud.ply",
        stats=f"{RESULTS}/{{dataset}}/{{scene}}/{{codec}}@{{base}}/{{cvariant}}@{{bvariant}}/codec_stats.json",
        bitstream=directory(f"{RESULTS}/{{dataset}}/{{scene}}/{{codec}}@{{base}}/{{cvariant}}@{{bvariant}}/bitstream"),
    params:
        codec="{codec}",
        params=codec_params,
        settings=train_settings,
    log:
        f"{LOGS}/compress/{{dataset}}/{{scene}}/{{codec}}@{{base}}/{{cvariant}}@{{bvariant}}.log",
    benchmark:
        f"{BENCH}/compress/{{dataset}}/{{scene}}/{{codec}}@{{base}}/{{cvariant}}@{{bvariant}}.tsv"
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=eval_mem,
        runtime=eval_runtime,
    conda:
        GPU_ENV
    script:
        "../workflow_scripts/compress.py"


rule encode:
    input:
        model=trained_codec_model,
        scene=rules.prepare_scene.output[0],
    output:
        model=f"{RESULTS}/{{dataset}}/{{scene}}/{{trained_codec}}/{{variant}}/codec/point_cloud.ply",
        stats=f"{RESULTS}/{{dataset}}/{{scene}}/{{trained_codec}}/{{variant}}/codec/codec_stats.json",
        bitstream=directory(f"{RESULTS}/{{dataset}}/{{scene}}/{{trained_codec}}/{{variant}}/codec/bitstream"),
    params:
        codec="{trained_codec}",
        params=trained_codec_params,
        settings=train_settings,
    log:
        f"{LOGS}/encode/{{dataset}}/{{scene}}/{{trained_codec}}/{{variant}}.log",
    benchmark:
        f"{BENCH}/encode/{{dataset}}/{{scene}}/{{trained_codec}}/{{variant}}.tsv"
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=eval_mem,
        runtime=eval_runtime,
    conda:
        GPU_ENV
    script:
        "../workflow_scripts/compress.py"
