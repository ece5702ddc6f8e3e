"""The pinhole camera every layer shares: data readers build it, rasterizers and metrics use it.

It lives below both ``gs.data`` and ``gs.render`` (which are independent layers) so that
neither has to import the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch


@dataclass
class Camera:
    """A pinhole camera. ``viewmat`` is world->camera (4,4), OpenCV axes (x right, y down,
    z forward), like COLMAP."""

    viewmat: torch.Tensor
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    name: str = ""
    image_path: str | None = None

    @cached_property
    def K(self) -> torch.Tensor:
        """(3,3) intrinsics on the camera's device. Cached: building a CUDA tensor from Python
        floats is a pageable host-to-device copy, which synchronises the stream every step."""
        return torch.tensor(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]],
            dtype=torch.float32, device=self.viewmat.device,
        )

    @cached_property
    def ndc_scale(self) -> torch.Tensor:
        """(2,) = (0.5*W, 0.5*H): turns a pixel gradient into NDC units (cached, see ``K``)."""
        return torch.tensor([0.5 * self.width, 0.5 * self.height], dtype=torch.float32,
                            device=self.viewmat.device)

    @cached_property
    def center(self) -> torch.Tensor:
        """Camera centre in world coordinates (cached; the view matrix is never mutated)."""
        R = self.viewmat[:3, :3]
        t = self.viewmat[:3, 3]
        return -R.T @ t

    def to(self, device: str | torch.device) -> "Camera":
        """This camera on ``device``: itself when already there, so the cached device tensors
        (``K``, ``ndc_scale``, ``center``) are built once, not per render."""
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:  # "cuda" is the current device
            device = torch.device("cuda", torch.cuda.current_device())
        if self.viewmat.device == device:
            return self
        return Camera(self.viewmat.to(device), self.fx, self.fy, self.cx, self.cy,
                      self.width, self.height, self.name, self.image_path)

    def scaled(self, factor: float) -> "Camera":
        """The same camera at a resolution divided by ``factor``."""
        w = max(1, round(self.width / factor))
        h = max(1, round(self.height / factor))
        sx, sy = w / self.width, h / self.height
        return Camera(self.viewmat, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy,
                      w, h, self.name, self.image_path)


__all__ = ["Camera"]
