"""Rule prepare_scene: load a scene at its evaluation resolution once, check it and write the
manifest (path, protocol, views, input hashes) every later rule reads the scene through."""
import json
from pathlib import Path

import _setup  # noqa: F401

from gs.data import load_scene
from gs.eval.provenance import sha256_files

with _setup.logged(snakemake):  # noqa: F821
    sm = snakemake  # noqa: F821
    protocol = dict(sm.params.protocol)
    scene = load_scene(sm.params.path, **protocol)
    print(scene.summary())
    cam = (scene.train_cameras or scene.test_cameras)[0]
    manifest = {
        "dataset": sm.wildcards.dataset,
        "scene": sm.wildcards.scene,
        "path": str(sm.params.path),
        "protocol": protocol,
        "resolution": [cam.width, cam.height],
        "resolution_note": scene.resolution_note,
        "undistortion": scene.undistortion,
        "image_folder": scene.image_folder,
        "num_train": len(scene.train_cameras),
        "num_test": len(scene.test_cameras),
        "test_views": [c.name for c in scene.test_cameras],
        "num_points": int(len(scene.points)),
        "random_init": bool(scene.random_init),
        "input_sha256": sha256_files(scene.input_files),
    }
    Path(sm.output[0]).write_text(json.dumps(manifest, indent=2) + "\n")
