"""Rule provenance: versions, commit, device and protocol behind the report (JSON + HTML)."""
import _setup  # noqa: F401

with _setup.logged(snakemake):  # noqa: F821
    import json
    from pathlib import Path

    from gs.eval.provenance import git_commit, versions
    from gs.report.html import provenance_html

    sm = snakemake  # noqa: F821
    runs = [json.loads(Path(p).read_text()) for p in sm.input]
    info = {
        "git_commit": git_commit(_setup.REPO),
        "versions": versions(),
        "protocol": sm.params.protocol,
        "config": sm.params.config,
        "runs": [
            {k: r.get(k) for k in ("dataset", "scene", "method", "variant", "backend", "device", "git_commit",
                                   "created")}
            | {"protocol": r.get("protocol"), "starts_from": (r.get("extra") or {}).get("starts_from")}
            for r in runs
        ],
    }
    Path(sm.output.json).write_text(json.dumps(info, indent=2, default=str) + "\n")
    Path(sm.output.html).write_text(provenance_html(info))
