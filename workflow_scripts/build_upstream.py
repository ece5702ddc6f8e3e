"""Rule build_upstream: set up one method's upstream checkout, build the programs it calls and
compile its CUDA extensions (gs.upstream.runner.prepare_upstream, cached), without a GPU slot;
the output names them."""
import _setup  # noqa: F401

with _setup.logged(snakemake):  # noqa: F821
    import os

    from gs.io import write_json
    from gs.methods.registry import upstream_pin
    from gs.upstream.recipes import recipe_for
    from gs.upstream.runner import prepare_upstream

    sm = snakemake  # noqa: F821
    method = sm.wildcards.urecipe
    os.environ.setdefault("MAX_JOBS", str(sm.threads))  # parallel nvcc jobs of torch's extension builder
    repository, commit = upstream_pin(method)
    src, site = prepare_upstream(recipe_for(method), repository, commit, sm.params.cache, sm.params.sources)
    write_json(sm.output[0], {"method": method, "repository": repository, "commit": commit,
                              "checkout": str(src), "extensions": str(site) if site else None})
