"""Codecs: post-training (or trained) compression of Gaussian models, and the building blocks
the codecs share (container files, entropy coding, column streams, octree geometry, RAHT,
partitions, quantizers).

The names below load lazily: the decoder's worker processes import
:mod:`gs.codecs.column_streams` without torch."""

from __future__ import annotations

from typing import Any

__all__ = ["BitstreamError", "Codec", "CodecContext", "bitstream_size", "run_codec"]


def __getattr__(name: str) -> Any:
    if name == "run_codec":
        from gs.codecs.run import run_codec

        return run_codec
    if name in __all__:
        from gs.codecs import base

        return getattr(base, name)
    raise AttributeError(f"module 'gs.codecs' has no attribute {name!r}")
