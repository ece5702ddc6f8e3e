# Helpers that turn the validated config + the method registry into targets, paths and params.
# The logic lives in gs/pipeline.py (plain Python, unit-tested); this file only adapts it to
# Snakemake's wildcards. Method ids come from the registry, never from a rule.
import json
import os
import sys
from types import SimpleNamespace

sys.path.insert(0, workflow.basedir)  # the gs package of this checkout, installed or not

from gs import pipeline
from gs.methods.registry import METHODS

try:
    pipeline.check_scene_selection(config)
    RUNS = pipeline.runs(config)
    DOWNLOADS = pipeline.downloads(config)
    CONSTRAINTS = pipeline.wildcard_constraints(config)
    pipeline.check_scene_locations(config)
except pipeline.ConfigError as e:
    raise WorkflowError(f"config error: {e}")

RESULTS = config["results_dir"]
PRIMARY_SEED = pipeline.primary_seed(config)
# paper numbers ship with the code: a relative path that is not in the working directory is
# taken relative to this checkout (so --directory elsewhere still finds them)
if not os.path.isabs(config["paper_results"]) and not os.path.exists(config["paper_results"]):
    config["paper_results"] = os.path.join(workflow.basedir, config["paper_results"])
DATA = config["data_dir"]
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
# GPU jobs ask for one GPU unless the config pins the CPU (slurm turns gpu=1 into --gpus=1;
# locally it only counts against --resources gpu=N when that is given).
GPU = 0 if config["device"] == "cpu" else 1
ITER_SCALE = config["iterations"] / 30000
# conda environments (--software-deployment-method conda); paths are relative to rules/
CPU_ENV = "../envs/gsbench-cpu.yaml"
GPU_ENV = CPU_ENV if config["device"] == "cpu" else "../envs/gsbench-cuda.yaml"


def all_targets(config):
    return pipeline.all_targets(config) + run_outputs()


def run_outputs():
    """Every run's model and statistics files (what its evaluation reads), as targets beside the
    metrics: Snakemake deletes a forced job's outputs before it runs, so a --forcerun killed
    midway leaves them missing; as targets they make the next plain run redo that job and the
    evaluation after it (otherwise the old metrics.json counts as up to date)."""
    out = []
    for r in RUNS:
        wc = SimpleNamespace(dataset=r.dataset, scene=r.scene, run=r.method, rvariant=r.variant_dir)
        out += [path for key, path in evaluate_inputs(wc).items() if key != "scene"]
    return sorted(set(out))


def metrics_files(wildcards=None):
    return [f"{r.dir(RESULTS)}/metrics.json" for r in RUNS]


def dataset_metrics(wildcards):
    return [f"{r.dir(RESULTS)}/metrics.json" for r in RUNS if r.dataset == wildcards.dataset]


def scene_runs(wildcards):
    """The runs of one scene at the primary seed (one per method and variant: the strips)."""
    return [r for r in RUNS if r.dataset == wildcards.dataset and r.scene == wildcards.scene
            and pipeline.run_seed(config, r.variant_dir) == PRIMARY_SEED]


def scene_metrics(wildcards):
    return [f"{r.dir(RESULTS)}/metrics.json" for r in scene_runs(wildcards)]


def scene_manifest(wildcards):
    return f"{RESULTS}/{wildcards.dataset}/{wildcards.scene}/scene.json"


# ---------------------------------------------------------------------- data
def download_url(wildcards):
    return DOWNLOADS[wildcards.archive]["url"]


def download_sha256(wildcards):
    return DOWNLOADS[wildcards.archive]["sha256"] or ""


def archive_for_stem(wildcards):
    names = [a for a in DOWNLOADS if pipeline.archive_stem(a) == wildcards.stem]
    return f"{DATA}/downloads/{names[0]}"


def scene_source(wildcards):
    """What must exist before a scene can be prepared: a generated or extracted folder, or the
    local scene folder itself."""
    path, producer = pipeline.scene_location(config, wildcards.dataset, wildcards.scene)
    return [producer or path]


def scene_path(wildcards):
    return pipeline.scene_location(config, wildcards.dataset, wildcards.scene)[0]


def scene_protocol(wildcards):
    return pipeline.scene_protocol(config, wildcards.dataset, wildcards.scene)


def generate_params(wildcards):
    return pipeline.generate_params(config, wildcards.dataset, wildcards.scene)


# ---------------------------------------------------------------------- train / compress
def trained_method(wildcards):
    """(method id, whether the authors' code trains it: rules/upstream.smk's {umethod})."""
    if "umethod" in wildcards.keys():
        return wildcards.umethod, True
    return wildcards.method, False


def train_params(wildcards):
    variant = pipeline.split_seed(wildcards.variant)[0]
    return pipeline.method_params(config, trained_method(wildcards)[0], variant, wildcards.dataset, wildcards.scene)


def baseline_stats(wildcards):
    """The baseline's train_stats.json (same scene and seed; the authors' baseline for the
    authors' code) when this method takes params from it, else nothing."""
    method, upstream = trained_method(wildcards)
    if not pipeline.baseline_inputs(method):
        return []
    base, bvariant = pipeline.baseline_method()
    seed = pipeline.split_seed(wildcards.variant)[1]
    run = pipeline.Run(wildcards.dataset, wildcards.scene, pipeline.upstream_id(base) if upstream else base,
                       bvariant, seed)
    return [f"{run.dir(RESULTS)}/train_stats.json"]


BASELINE = pipeline.baseline_method()[0]
NON_BASELINE = pipeline.alternation(m for m in pipeline.train_methods() if m != BASELINE)
PREFIX_ITERATIONS = pipeline.prefix_iterations(config)


def _prefix_run(wildcards):
    """(iteration, baseline run) when this training run starts from the baseline's prefix."""
    variant, seed = pipeline.split_seed(wildcards.variant)
    it = pipeline.prefix_iteration(config, wildcards.method, wildcards.dataset, wildcards.scene)
    if it is None:
        return None
    base, bvariant = pipeline.baseline_method()
    return it, pipeline.Run(wildcards.dataset, wildcards.scene, base, bvariant, seed)


def baseline_prefix(wildcards):
    """The baseline checkpoint this run starts from (same scene and seed), or nothing."""
    pr = _prefix_run(wildcards)
    return [] if pr is None else [f"{pr[1].dir(RESULTS)}/prefix_{pr[0]}.pt"]


def prefix_start(wildcards):
    pr = _prefix_run(wildcards)
    return None if pr is None else {"iteration": pr[0], "run": f"{pr[1].method}/{pr[1].variant_dir}"}


def baseline_params(wildcards):
    return pipeline.baseline_inputs(trained_method(wildcards)[0])


def codec_params(wildcards):
    return pipeline.method_params(config, wildcards.codec, wildcards.cvariant, wildcards.dataset, wildcards.scene)


def upstream_codec_params(wildcards):
    return pipeline.method_params(config, wildcards.ucodec, wildcards.cvariant, wildcards.dataset, wildcards.scene)


def trained_codec_params(wildcards):
    variant = pipeline.split_seed(wildcards.variant)[0]
    return pipeline.method_params(config, wildcards.trained_codec, variant, wildcards.dataset, wildcards.scene)


def train_settings(wildcards):
    """Schedule, backend, device, and the seed of this job's branch (from ``~seed<N>``)."""
    keys = ("iterations", "backend", "device", "checkpoint_every")
    names = wildcards.keys()
    folder = next(getattr(wildcards, k) for k in ("variant", "bvariant", "rvariant") if k in names)
    return {**{k: config[k] for k in keys}, "seed": pipeline.run_seed(config, folder)}


def base_model(wildcards):
    return f"{RESULTS}/{wildcards.dataset}/{wildcards.scene}/{wildcards.base}/{wildcards.bvariant}/point_cloud.ply"


def trained_codec_model(wildcards):
    return f"{RESULTS}/{wildcards.dataset}/{wildcards.scene}/{wildcards.trained_codec}/{wildcards.variant}/point_cloud.ply"


# ---------------------------------------------------------------------- evaluate
def evaluate_inputs(wildcards):
    """The model a run is scored on, and the statistics files that travel with it."""
    run = pipeline.Run.from_dir(wildcards.dataset, wildcards.scene, wildcards.run, wildcards.rvariant)
    d = run.dir(RESULTS)
    method, implementation = pipeline.split_implementation(run.parts()[0])
    out = {"scene": scene_manifest(wildcards)}
    if run.base_run() is not None:
        bdir = run.base_run().dir(RESULTS)
        out.update(model=f"{d}/point_cloud.ply", codec_stats=f"{d}/codec_stats.json",
                   train_stats=f"{bdir}/train_stats.json")
    elif implementation == "ours" and METHODS[method].codec:
        out.update(model=f"{d}/codec/point_cloud.ply", codec_stats=f"{d}/codec/codec_stats.json",
                   train_stats=f"{d}/train_stats.json")
    else:
        out.update(model=f"{d}/point_cloud.ply", train_stats=f"{d}/train_stats.json")
    return out


# ---------------------------------------------------------------------- resources
# Runtimes in minutes for the slurm executor, scaled by the schedule; retries (attempt) grow
# memory and time so a job killed for either gets more on its next try.
def train_runtime(wildcards, attempt):
    return int(30 + 150 * ITER_SCALE) * attempt


def train_mem(wildcards, attempt):
    return 16000 * attempt


def eval_runtime(wildcards, attempt):
    return 30 * attempt


def eval_mem(wildcards, attempt):
    return 8000 * attempt


# ---------------------------------------------------------------------- report
def dataset_title(wildcards):
    return config["datasets"][wildcards.dataset].get("title", wildcards.dataset)


def protocol_summary(wildcards=None):
    return {
        "iterations": config["iterations"],
        "seed": config["seed"],
        "seeds": pipeline.seeds(config),
        "backend": config["backend"],
        "device": config["device"],
        "test_every": config["test_every"],
        "max_side": config["max_side"],
        "scenes": {f"{d}/{s}": pipeline.scene_protocol(config, d, s) for d, s in pipeline.all_scenes(config)},
    }


def strip_methods(wildcards):
    return [[r.method, r.variant] for r in scene_runs(wildcards)]


# ---------------------------------------------------------------------- one run per results folder
# An executing run holds a lock in results_dir (dropped by the kernel when the run ends, however
# it ends); a second run on the same folder, from any working directory, stops at its start.
from gs import results_lock


onstart:
    try:
        results_lock.acquire(RESULTS)
    except results_lock.ResultsLocked as e:
        raise WorkflowError(str(e))


onsuccess:
    results_lock.release(RESULTS)


onerror:
    results_lock.release(RESULTS)
