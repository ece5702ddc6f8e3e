# GS Bench: 3D Gaussian Splatting pruning and compression methods, one protocol, one DAG.
#   snakemake --cores all                                   the embedded default (config.yaml)
#   snakemake --cores all --configfile config/tandt.yaml    a paper preset (replaces config.yaml)
#   snakemake --report results/report.html                  the HTML report
from snakemake.utils import min_version, validate

min_version("8.0")


# A preset given with --configfile is a complete config: it replaces the embedded default
# instead of being merged into it (otherwise the generated scene would join every paper run).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


validate(config, "gs/schemas/config.schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    **CONSTRAINTS,


include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/upstream.smk"
include: "rules/compress.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(config),
