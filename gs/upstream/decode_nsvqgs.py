"""Decode an NSVQ-GS bitstream with the authors' own decoder and write a standard 3DGS PLY.

``python decode_nsvqgs.py compressed_model.zip OUT.ply STATS.json``, run by path (it needs no
``gs``) with the authors' checkout as the working directory, as their ``render.py --load_quant``
runs: their ``GaussianModel.load_ply(folder, load_quant=True)`` unzips ``compressed_model.zip``
in that folder, unpacks the fixed-width indices and looks the codebooks up. It deletes the
unzipped files afterwards, so it works on a copy and the bitstream stays. Their ``save_ply``
then writes the decoded model (positions, SH, opacity logits, log-scales, quaternions), which
our evaluator scores like any other PLY. STATS.json gets ``decode_seconds``: the load call
alone (unzip, index unpacking, codebook lookup, upload to the GPU), as their renderer pays it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str]) -> None:
    bitstream, out_ply, stats = (Path(a) for a in argv)
    sys.path[0] = os.getcwd()  # the authors' checkout, not this file's folder
    import torch
    from scene.gaussian_model import GaussianModel  # the authors' module

    def sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    with tempfile.TemporaryDirectory(prefix="gsbench_decode_") as tmp:
        work = Path(tmp)
        shutil.copy(bitstream, work / bitstream.name)
        model = GaussianModel(3)
        sync()
        t0 = time.perf_counter()
        model.load_ply(str(work), load_quant=True)
        sync()
        seconds = time.perf_counter() - t0
        model.save_ply(str(work / "decoded"))
        out_ply.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(work / "decoded" / "point_cloud.ply"), out_ply)
    stats.write_text(json.dumps({
        "decode_seconds": seconds,
        "note": "the authors' GaussianModel.load_ply(load_quant=True): unzip, index unpacking, codebook lookup",
    }))


if __name__ == "__main__":
    main(sys.argv[1:])
