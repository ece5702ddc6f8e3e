"""The decoders under mutated bitstreams (the harness of benchmarks/codec_fuzz.py, a few hundred
cases per decoder): every case decodes or raises BitstreamError; no other exception, no hang,
no huge allocation, no dead worker."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("codec_fuzz", REPO / "benchmarks" / "codec_fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_mutated_bitstreams_decode_or_raise_the_format_error():
    fuzz = _fuzz_module()
    result = fuzz.run_fuzz(cases=600, seed=0)
    for codec in fuzz.CODECS:
        counts = result["counts"][codec]
        assert sum(counts.values()) == 300
        assert counts["bitstream_error"] > 100  # the mutations reach the decoders' checks
    assert result["failures"] == 0, result["first_failures"]
    assert set(result["by_mutation"]) == set(fuzz.RAW + fuzz.STRUCTURED)
