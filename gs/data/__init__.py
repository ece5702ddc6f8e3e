"""Datasets: COLMAP / Blender / instant-ngp readers, the evaluation protocol, and a
procedural test scene. ``load_scene(path)`` is the one entry point."""

from gs.data.loader import load_scene
from gs.data.scene import Scene, SceneError, ViewSpec, camera_extent
from gs.data.synthetic import generate_scene

__all__ = ["Scene", "SceneError", "ViewSpec", "camera_extent", "generate_scene", "load_scene"]
