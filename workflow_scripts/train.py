"""Rule train: train one method/variant on one scene (resumes from its last checkpoint)."""
import _setup  # noqa: F401

with _setup.logged(snakemake):  # noqa: F821
    from pathlib import Path

    from gs.methods.registry import train_method
    from gs.pipeline import load_scene_from_manifest
    from gs.train.checkpoint import checkpoint_fingerprint, guard_checkpoints
    from gs.train.trainer import TrainConfig

    sm = snakemake  # noqa: F821
    s = sm.params.settings
    # the baseline saves the states other methods start from (declared outputs prefix_<it>)
    prefixes = tuple(sorted(int(k.split("_", 1)[1]) for k in sm.output.keys() if k.startswith("prefix_")))
    init = sm.params.init  # this run starts from the baseline's state at init["iteration"]
    cfg = TrainConfig(iterations=s["iterations"], seed=s["seed"], backend=s["backend"], device=s["device"],
                      checkpoint_every=s["checkpoint_every"], progress=True, prefix_iterations=prefixes,
                      init_checkpoint=sm.input.prefix[0] if init else None)
    params = dict(sm.params.params)
    if sm.params.from_baseline:  # e.g. a budget relative to the baseline's final count
        import json

        stats = json.loads(Path(sm.input.baseline[0]).read_text())
        for param, key in sm.params.from_baseline.items():
            params.setdefault(param, stats[key])
    run_dir = Path(sm.output.model).parent
    fp = checkpoint_fingerprint(sm.wildcards.method, params, s, Path(sm.input.scene).read_text(), init, prefixes)
    if guard_checkpoints(run_dir, fp):
        print(f"resuming from the checkpoints in {run_dir / 'checkpoints'}")
    if init:
        print(f"starting from the baseline run {init['run']} at iteration {init['iteration']} (shared prefix)")
    scene = load_scene_from_manifest(sm.input.scene)
    print(scene.summary())
    print(f"method {sm.wildcards.method} variant {sm.wildcards.variant}: {params}")
    result = train_method(scene, sm.wildcards.method, params, run_dir, cfg,
                          meta={"starts_from": init} if init else None)
    print({k: v for k, v in result.stats.items() if not isinstance(v, (list, dict))})
