"""gs.data.synthetic: the procedural COLMAP scene."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gs.data import generate_scene, load_scene
from gs.data import colmap


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic_and_seed_dependent(tmp_path):
    kw = dict(num_views=5, width=40, height=30, num_points=150)
    a = _digest(generate_scene(tmp_path / "a", seed=3, **kw))
    b = _digest(generate_scene(tmp_path / "b", seed=3, **kw))
    c = _digest(generate_scene(tmp_path / "c", seed=4, **kw))
    assert a == b
    assert set(a) == set(c)
    assert all(a[k] != c[k] for k in a if k.endswith(".png") or k.endswith("points3D.bin"))
    # regenerating into the same folder (fewer views) leaves no stale image behind
    generate_scene(tmp_path / "a", seed=3, num_views=3, width=40, height=30, num_points=50)
    assert len(list((tmp_path / "a" / "images").iterdir())) == 3


def test_default_scene_loads_and_is_consistent(tmp_path):
    root = generate_scene(tmp_path / "syn")
    s = load_scene(root)
    assert len(s.train_cameras) == 21 and len(s.test_cameras) == 3
    cam = s.train_cameras[0]
    assert (cam.width, cam.height) == (160, 120)
    assert s.points.shape == (2000, 3) and not s.random_init
    img = s.train_images[0].numpy().astype(float)
    assert img.std() > 30  # textured, not flat
    # real tracks: the stored 2D observations see the point's colour
    m = colmap.read_model(root / "sparse" / "0", with_tracks=True)
    assert m.cameras[1].model == "PINHOLE"
    lengths = np.array([len(t) for t in m.points.tracks])
    assert (lengths >= 1).all() and lengths.mean() > 3
    row = {int(p): i for i, p in enumerate(m.points.ids)}
    errs = []
    for im in m.images.values():
        px = np.asarray(Image.open(root / "images" / im.name), dtype=float)
        seen = px[im.xys[:, 1].astype(int), im.xys[:, 0].astype(int)]
        rows = np.array([row[int(p)] for p in im.point3d_ids])
        errs.append(np.abs(seen - m.points.rgb[rows]).mean(1))
    assert np.median(np.concatenate(errs)) < 12  # 8-bit units; colour noise + anti-aliasing at edges
    # cameras look at the scene: most points project inside each image
    for cam in s.train_cameras[:5]:
        V = cam.viewmat.double().numpy()
        pc = s.points @ V[:3, :3].T + V[:3, 3]
        u = cam.fx * pc[:, 0] / pc[:, 2] + cam.cx
        v = cam.fy * pc[:, 1] / pc[:, 2] + cam.cy
        ok = (pc[:, 2] > 0) & (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
        assert ok.mean() > 0.6


def test_any_resolution_and_view_count(tmp_path):
    root = generate_scene(tmp_path / "s", seed=1, num_views=3, width=33, height=17, num_points=0)
    with pytest.warns(UserWarning, match="no 3D points"):
        s = load_scene(root, eval_split=False)
    assert len(s.train_cameras) == 3 and (s.train_cameras[0].width, s.train_cameras[0].height) == (33, 17)
    assert s.random_init  # no points written -> random init (with a warning)
