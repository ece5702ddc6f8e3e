"""Run an upstream training script in this process and record its peak GPU memory.

``python measure.py OUT.json script.py ARGS...`` (run by path: it needs no ``gs``) runs ``script.py`` as ``__main__``
(its folder first on ``sys.path``, as ``python script.py`` would) and then writes
``{"peak_gpu_memory_bytes": torch.cuda.max_memory_allocated()}`` to OUT.json: the same
allocator figure our trainer reports, so the two implementations' peaks compare directly.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    out, script, *args = argv
    sys.argv = [script, *args]
    sys.path[0] = str(Path(script).resolve().parent)  # not this file's folder
    runpy.run_path(script, run_name="__main__")
    import torch

    peak = int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None
    Path(out).write_text(json.dumps({"peak_gpu_memory_bytes": peak}))


if __name__ == "__main__":
    main(sys.argv[1:])
