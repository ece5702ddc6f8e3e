"""Codec bitstream formats: a bitstream of the previous release still decodes, the files of one
bitstream are bound together, unknown versions and empty models get one clear error."""

from __future__ import annotations

import shutil
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from codec_helpers import random_model
from plyfile import PlyData, PlyElement

from gs.codecs.base import BitstreamError, CodecContext
from gs.codecs.container import read_container, write_container_set
from gs.codecs.run import make_codec
from gs.methods.hgsc import FILES, HGSCCodec
from gs.methods.nsvqgs import BITSTREAM_FILE, NSVQCodec
from gs.model import GaussianModel

FIXTURES = Path(__file__).parent / "data" / "codec_fixtures"
SMALL_K = {"k_scale": 8, "k_rotation": 8, "k_dc": 8, "k_sh": 8}


def encode(codec, model, out: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        codec.encode(model, out, CodecContext())
    return out


@pytest.mark.parametrize("name, codec", [("hgsc_v2", HGSCCodec), ("nsvqgs_v1", NSVQCodec)])
def test_a_bitstream_of_the_previous_release_still_decodes(name, codec):
    """The fixtures were written by the release before stream ids (container version 1, HGSC
    format 2, NSVQ-GS format 1); they decode to the same tensors as then (unbound: their files
    carry no stream id)."""
    dec = codec().decode(FIXTURES / name / "bitstream")
    with np.load(FIXTURES / name / "decoded.npz") as want:
        assert sorted(want.files) == sorted(dec.params)
        for k in want.files:
            assert np.array_equal(dec.params[k].detach().numpy(), want[k]), k


def test_a_file_from_another_encode_is_an_error_naming_it(tmp_path):
    model = random_model(600, degree=1)
    a = encode(HGSCCodec(prune_percent=0), model, tmp_path / "a")
    b = encode(HGSCCodec(prune_percent=0, lod_bits=6), model, tmp_path / "b")
    same = encode(HGSCCodec(prune_percent=0), model, tmp_path / "same")
    for key in FILES:  # identical encodes write identical files
        assert (a / FILES[key]).read_bytes() == (same / FILES[key]).read_bytes()
    shutil.copy(b / FILES["lod1"], a / FILES["lod1"])
    with pytest.raises(BitstreamError, match=r"lod1\.gsbc: belongs to another encode than header\.gsbc"):
        HGSCCodec().decode(a)
    # a file of the previous release (no stream id) among new ones
    shutil.copy(same / FILES["lod1"], a / FILES["lod1"])
    HGSCCodec().decode(a)
    shutil.copy(FIXTURES / "hgsc_v2" / "bitstream" / FILES["anchors"], a / FILES["anchors"])
    with pytest.raises(BitstreamError, match=r"anchors\.gsbc: belongs to another encode.*older release"):
        HGSCCodec().decode(a)


@pytest.mark.parametrize("codec, files", [(HGSCCodec(prune_percent=0), list(FILES.values())),
                                          (NSVQCodec(**SMALL_K), [BITSTREAM_FILE])])
def test_unknown_versions_are_a_clear_version_error(tmp_path, codec, files):
    out = encode(codec, random_model(300, degree=1), tmp_path / "bs")
    first = out / files[0]
    data = bytearray(first.read_bytes())
    struct.pack_into("<H", data, 4, 3)  # a container version from a later release
    first.write_bytes(bytes(data))
    with pytest.raises(BitstreamError, match=rf"{files[0]}: container version 3, this reader knows versions 1, 2"):
        type(codec)().decode(out)
    encode(codec, random_model(300, degree=1), out)
    contents = {out / f: read_container(out / f) for f in files}
    contents[first] = (contents[first][0], {**contents[first][1], "version": 99})
    write_container_set(contents)
    with pytest.raises(BitstreamError, match=rf"{files[0]}: .* format version 99, this decoder reads"):
        type(codec)().decode(out)


@pytest.mark.parametrize("codec_id", ["hgsc", "nsvqgs"])
def test_a_model_without_gaussians_is_one_clear_error(tmp_path, codec_id):
    one = random_model(1, degree=1).to_ply_array()
    ply = tmp_path / "empty.ply"
    PlyData([PlyElement.describe(one[:0], "vertex")]).write(str(ply))
    model = GaussianModel.load_ply(ply)
    assert model.num_gaussians == 0
    with pytest.raises(ValueError, match="the model has 0 Gaussians; there is nothing to encode"):
        make_codec(codec_id, {}).encode(model, tmp_path / "bs", CodecContext())
    assert not (tmp_path / "bs").exists() or not any((tmp_path / "bs").iterdir())
