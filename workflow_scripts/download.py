"""Rule download: fetch an archive (HTTP(S) or Google Drive), verify or record its sha256."""
import json
from pathlib import Path

import _setup  # noqa: F401

from gs.data.download import download

with _setup.logged(snakemake):  # noqa: F821
    record = download(snakemake.params.url, snakemake.output.archive,  # noqa: F821
                      sha256=snakemake.params.sha256 or None)  # noqa: F821
    if not record["verified"]:
        print(f"no sha256 in the config for {record['url']}; recorded {record['sha256']} "
              f"(put it in the config as sha256: to pin this download)")
    Path(snakemake.output.record).write_text(json.dumps(record, indent=2) + "\n")  # noqa: F821
