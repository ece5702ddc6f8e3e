"""Rule generate_scene: write a synthetic COLMAP scene."""
import _setup  # noqa: F401  (sys.path)

from gs.data import generate_scene

with _setup.logged(snakemake):  # noqa: F821 - injected by Snakemake
    out = generate_scene(snakemake.output[0], **snakemake.params.generate)  # noqa: F821
    print(f"generated scene at {out} with {snakemake.params.generate}")  # noqa: F821
