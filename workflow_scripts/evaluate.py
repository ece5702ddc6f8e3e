"""Rule evaluate: render the test views, score them, write metrics.json (+ renders/); the JSON
records the plain variant and the seed of the run's branch (``~seed<N>`` folders)."""
import _setup  # noqa: F401

with _setup.logged(snakemake):  # noqa: F821
    import json
    from pathlib import Path

    from gs.eval.evaluate import evaluate_model
    from gs.model import GaussianModel
    from gs.pipeline import load_scene_from_manifest, split_seed

    sm = snakemake  # noqa: F821
    s = sm.params.settings
    device = None if s["device"] == "auto" else s["device"]
    scene = load_scene_from_manifest(sm.input.scene)
    model = GaussianModel.load_ply(sm.input.model)
    extra, inputs = {}, [sm.input.model]
    size_bytes, size_reason = Path(sm.input.model).stat().st_size, "PLY file size"
    train = json.loads(Path(sm.input.train_stats).read_text())
    for k in ("train_seconds", "peak_memory_bytes", "peak_gpu_memory_bytes", "iterations", "starts_from",
              "collapse"):
        if k in train:
            extra[k] = train[k]
    extra["implementation"] = train.get("implementation", "ours")  # "upstream@<commit>": the authors' code
    if train.get("gpu_sharing") is not None:  # whether train_seconds is a solo figure
        extra["train_gpu_sharing"] = train["gpu_sharing"]
    codec = json.loads(Path(sm.input.codec_stats).read_text()) if "codec_stats" in sm.input.keys() else None
    if codec is None and "size_bytes" in train:  # the authors' trained codec: the runner measured their bitstream
        codec = train
    if codec is not None:  # a codec's size is its bitstream, with its seconds and its size in the paper's layout
        size_bytes = codec["size_bytes"]
        size_reason = codec.get("size_bytes_reason", "bitstream bytes (every file the decoder reads)")
        extra["encode_seconds"], extra["decode_seconds"] = codec.get("encode_seconds"), codec.get("decode_seconds")
        for k in ("size_bytes_paper_format", "size_bytes_paper_format_reason"):
            if k in codec:
                extra[k] = codec[k]
        if "implementation" in codec:  # the authors' code (their files stay in upstream_output/)
            extra["implementation"] = codec["implementation"]
        elif "codec_stats" in sm.input.keys():
            inputs.append(Path(sm.input.codec_stats).parent / "bitstream")
    evaluate_model(
        model, scene, Path(sm.output.metrics).parent, method=sm.wildcards.run,
        variant=split_seed(sm.wildcards.rvariant)[0], dataset=sm.wildcards.dataset, scene_name=sm.wildcards.scene,
        backend=s["backend"], device=device,
        size_bytes=size_bytes, size_reason=size_reason, model_path=sm.input.model, input_files=inputs,
        extra=extra, seed=s["seed"], save_gt=False, progress=False,
    )
