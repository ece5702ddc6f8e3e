"""Rule train_upstream: train one method/variant on one scene with the authors' code
(gs.upstream.runner); writes our point_cloud.ply + train_stats.json."""
import _setup  # noqa: F401

with _setup.logged(snakemake):  # noqa: F821
    import json
    from pathlib import Path

    from gs.io import write_json
    from gs.methods.registry import upstream_pin
    from gs.train.trainer import collapse
    from gs.upstream.recipes import recipe_for
    from gs.upstream.runner import run_upstream

    sm = snakemake  # noqa: F821
    method = sm.wildcards.umethod
    params = dict(sm.params.params)
    if sm.params.from_baseline:  # e.g. GNS's budget relative to the upstream baseline's final count
        stats = json.loads(Path(sm.input.baseline[0]).read_text())
        for param, key in sm.params.from_baseline.items():
            params.setdefault(param, stats[key])
    repository, commit = upstream_pin(method)
    info = json.loads(Path(sm.input.scene).read_text())
    stats = run_upstream(recipe_for(method), repository, commit, info["path"], info["protocol"],
                         sm.params.settings["iterations"], params, sm.output.model, sm.output.stats,
                         sm.params.cache, sm.params.sources)
    # the check our trainer applies to its own runs (count criterion only: the authors' logs
    # carry no PSNR history we read), so a collapse is flagged on both sides alike
    stats["collapse"] = collapse([], int(info.get("num_points", 0)), int(stats["num_gaussians"]), from_scratch=False)
    if stats["collapse"] is not None:
        print(f"warning: {method}~upstream collapsed: {stats['collapse']['reason']}")
    write_json(sm.output.stats, stats)
    print({k: v for k, v in stats.items() if not isinstance(v, (list, dict))})
