"""Rules compress / encode: run a codec over a trained model, decode it from the bitstream."""
import _setup  # noqa: F401

with _setup.logged(snakemake):  # noqa: F821
    from pathlib import Path

    from gs.codecs.run import run_codec
    from gs.pipeline import load_scene_from_manifest

    sm = snakemake  # noqa: F821
    s = sm.params.settings
    device = None if s["device"] == "auto" else s["device"]
    scene = load_scene_from_manifest(sm.input.scene)
    print(f"codec {sm.params.codec} {sm.params.params} over {sm.input.model}")
    stats = run_codec(sm.params.codec, dict(sm.params.params), sm.input.model, Path(sm.output.model).parent,
                      scene=scene, backend=s["backend"], device=device, seed=s["seed"])
    print({k: v for k, v in stats.items() if not isinstance(v, (list, dict))})
