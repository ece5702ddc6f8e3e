"""Rule extract: unpack an archive safely into its folder (atomic: all or nothing)."""
import _setup  # noqa: F401

from gs.data.download import extract

with _setup.logged(snakemake):  # noqa: F821
    out = extract(snakemake.input[0], snakemake.output[0], overwrite=True)  # noqa: F821
    print(f"extracted {snakemake.input[0]} into {out}")  # noqa: F821
