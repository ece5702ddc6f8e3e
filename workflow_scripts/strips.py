"""Rule strips: ground truth | baseline | each method, for a few test views of one scene,
stacked into one image."""
import _setup  # noqa: F401

with _setup.logged(snakemake):  # noqa: F821
    import json
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from gs.pipeline import load_scene_from_manifest, strip_runs
    from gs.report.strips import comparison_strip

    sm = snakemake  # noqa: F821
    scene = load_scene_from_manifest(sm.input.scene)
    evals = [(p, json.loads(Path(p).read_text())) for p in sm.input.metrics]
    chosen = strip_runs([(e["method"], e["variant"], p) for p, e in evals])
    n = len(scene.test_images)
    views = sorted({int(round(i)) for i in np.linspace(0, n - 1, min(sm.params.views, n))})
    by_path = dict(evals)
    rows = []
    for v in views:
        tiles = [("ground truth", scene.test_images[v], None)]
        for label, path in chosen:
            item = by_path[path]["per_image"][v]
            tiles.append((label, Path(path).parent / item["render"], item.get("psnr")))
        rows.append(comparison_strip(tiles, tile_height=max(120, scene.test_images[v].shape[0])))
    width = max(r.width for r in rows)
    out = Image.new("RGB", (width, sum(r.height for r in rows) + 4 * (len(rows) - 1)), (255, 255, 255))
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height + 4
    out.save(sm.output[0])
    print(f"{len(views)} views x {len(chosen)} runs -> {sm.output[0]}")
