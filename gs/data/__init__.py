"""Datasets: COLMAP / Blender / instant-ngp readers, the evaluation protocol, and a
procedural test scene. ``load_scene(path)`` is the one entry point."""

from typing import Any

from gs.data.loader import load_scene
from gs.data.scene import Scene, SceneError, ViewSpec, camera_extent

__all__ = ["Scene", "SceneError", "ViewSpec", "camera_extent", "generate_scene", "load_scene"]


def __getattr__(name: str) -> Any:
    # imported lazily so that `python -m gs.data.synthetic` does not import itself twice
    if name == "generate_scene":
        from gs.data.synthetic import generate_scene

        return generate_scene
    raise AttributeError(f"module 'gs.data' has no attribute {name!r}")
