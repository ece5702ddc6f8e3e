"""Fixtures shared by the test files: a small generated scene and a tiny model trained on it,
each built once per test run (session scope) and treated as read-only by the tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def generated_scene_dir(tmp_path_factory):
    """The procedural scene (COLMAP layout) at 48x36 px, 9 views (2 of them test views)."""
    from gs.data import generate_scene

    return generate_scene(tmp_path_factory.mktemp("generated") / "demo", seed=0, num_views=9, width=48,
                          height=36, num_points=300)


@pytest.fixture(scope="session")
def generated_scene(generated_scene_dir):
    """:func:`generated_scene_dir` loaded with the evaluation protocol's defaults."""
    from gs.data import load_scene

    return load_scene(generated_scene_dir)


@pytest.fixture(scope="session")
def trained_model(generated_scene, tmp_path_factory):
    """The baseline trained for 30 iterations on :func:`generated_scene` (torch backend, CPU):
    ``(model, run folder)``; the folder holds point_cloud.ply and train_stats.json."""
    from gs.methods.baseline import BaselineStrategy
    from gs.train.trainer import TrainConfig, Trainer

    out = tmp_path_factory.mktemp("trained") / "3dgs"
    cfg = TrainConfig(iterations=30, backend="torch", device="cpu", sh_degree=1, progress=False, seed=0)
    result = Trainer(generated_scene, BaselineStrategy(), cfg, out, label="3dgs").train()
    return result.model, out
