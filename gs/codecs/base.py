"""Codec interface: post-training (or trained) compression of a GaussianModel.

``encode(model, out_dir, ctx) -> dict`` writes a bitstream directory and returns statistics
(at least ``size_bytes`` and a ``components`` dict name -> bytes); ``decode(in_dir, device)``
rebuilds a standard :class:`gs.model.GaussianModel` from those files alone (never from the
original model). Size = bytes of every file the decoder reads = :func:`bitstream_size`.

Corrupted or truncated bitstreams must raise :class:`BitstreamError` naming the file.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from gs.model import GaussianModel, file_size_bytes


class BitstreamError(ValueError):
    """A bitstream that cannot be decoded (corrupt, truncated, wrong version)."""


@contextlib.contextmanager
def decoding(name: str) -> Iterator[None]:
    """Any error while decoding the stream ``name`` (the range coder raises several kinds on
    impossible streams) becomes one :class:`BitstreamError` naming it."""
    try:
        yield
    except BitstreamError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise BitstreamError(f"{name}: cannot decode ({type(exc).__name__}: {exc})") from exc


@dataclass
class CodecContext:
    """What an encoder may use besides the model: the training views (e.g. HGSC's
    significance), the render backend, and method state saved by training (``aux``, e.g.
    NSVQ-GS codebooks and indices)."""

    scene: Any = None
    backend: str = "auto"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    aux: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


def require_gaussians(model: GaussianModel, codec: str) -> None:
    """One clear error for a model without Gaussians: a codec has nothing to encode."""
    if model.num_gaussians == 0:
        raise ValueError(f"{codec}: the model has 0 Gaussians; there is nothing to encode")


class Codec(ABC):
    """Base class; subclasses set ``id`` and implement encode/decode."""

    id: str = "codec"

    def __init__(self, **params: Any) -> None:
        self.params = params

    @abstractmethod
    def encode(self, model: GaussianModel, out_dir: str | Path, ctx: CodecContext) -> dict[str, Any]:
        """Write the bitstream files into ``out_dir``; return size and component statistics
        (``statistics_seconds``: time spent on statistics only, which encode_seconds leaves out)."""

    @abstractmethod
    def decode(self, in_dir: str | Path, device: str | torch.device = "cpu") -> GaussianModel:
        """Rebuild the model from the files in ``in_dir`` alone."""


def bitstream_size(in_dir: str | Path) -> int:
    return file_size_bytes(in_dir)
