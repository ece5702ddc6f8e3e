# Data: generate the synthetic scene, download + extract archives, prepare each scene once.


rule generate_scene:
    output:
        directory(f"{DATA}/generated/{{dataset}}/{{scene}}"),
    params:
        generate=generate_params,
    log:
        f"{LOGS}/generate_scene/{{dataset}}/{{scene}}.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        CPU_ENV
    script:
        "../workflow_scripts/generate_scene.py"


rule download:
    output:
        archive=f"{DATA}/downloads/{{archive}}",
        record=f"{DATA}/downloads/{{archive}}.json",
    params:
        url=download_url,
        sha256=download_sha256,
    log:
        f"{LOGS}/download/{{archive}}.log",
    retries: 2
    resources:
        mem_mb=1000,
        runtime=240,
    conda:
        CPU_ENV
    script:
        "../workflow_scripts/download.py"


rule extract:
    input:
        archive_for_stem,
    output:
        directory(f"{DATA}/extracted/{{stem}}"),
    log:
        f"{LOGS}/extract/{{stem}}.log",
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        CPU_ENV
    script:
        "../workflow_scripts/extract.py"


rule prepare_scene:
    input:
        scene_source,
    output:
        f"{RESULTS}/{{dataset}}/{{scene}}/scene.json",
    params:
        path=scene_path,
        protocol=scene_protocol,
    log:
        f"{LOGS}/prepare_scene/{{dataset}}/{{scene}}.log",
    resources:
        mem_mb=eval_mem,
        runtime=20,
    conda:
        CPU_ENV
    script:
        "../workflow_scripts/prepare_scene.py"
