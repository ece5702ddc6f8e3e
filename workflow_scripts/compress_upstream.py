"""Rule compress_upstream: compress one trained model with a codec's authors' code and decode it
with their code (gs.upstream.runner.run_upstream_codec); writes the decoded point_cloud.ply and
codec_stats.json, as the compress rule does for ours."""
import _setup  # noqa: F401

with _setup.logged(snakemake):  # noqa: F821
    from gs.methods.registry import upstream_pin
    from gs.pipeline import load_scene_from_manifest
    from gs.upstream.recipes import recipe_for
    from gs.upstream.runner import run_upstream_codec

    sm = snakemake  # noqa: F821
    method = sm.wildcards.ucodec
    repository, commit = upstream_pin(method)
    scene = load_scene_from_manifest(sm.input.scene)
    # the cameras of the model's training run, as the Inria trainer records them: every camera
    cameras = list(scene.train_cameras) + list(scene.test_cameras)
    stats = run_upstream_codec(recipe_for(method), repository, commit, sm.input.model, cameras, dict(sm.params.params),
                               sm.output.model, sm.output.stats, sm.params.cache, sm.params.sources,
                               white_background=bool(scene.white_background))
    print({k: v for k, v in stats.items() if not isinstance(v, (list, dict))})
