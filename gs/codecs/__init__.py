"""Codecs: post-training (or trained) compression of Gaussian models."""

from gs.codecs.base import BitstreamError, Codec, CodecContext, bitstream_size

__all__ = ["BitstreamError", "Codec", "CodecContext", "bitstream_size", "run_codec"]


def run_codec(*args, **kwargs):
    from gs.codecs.run import run_codec as _run

    return _run(*args, **kwargs)
