"""The authors' code as a second implementation of a method id.

A run of ``{method}~upstream`` trains the method with the authors' repository at the commit
pinned in ``gs/methods/deviations/<id>.yaml`` (:mod:`gs.upstream.recipes` says how to build and
call it, :mod:`gs.upstream.runner` does it); our evaluator then scores its PLY like any other
run, so tables put the two implementations side by side.
"""

from __future__ import annotations

UPSTREAM = "upstream"
#: the method folder of an upstream run: ``gns~upstream`` (method ids never contain ``~``)
UPSTREAM_SUFFIX = "~" + UPSTREAM


def split_implementation(method: str) -> tuple[str, str]:
    """``"gns~upstream"`` -> ``("gns", "upstream")``; ``"gns"`` -> ``("gns", "ours")``; a codec
    over a model names the codec's implementation: ``"hgsc~upstream@3dgs"`` -> ``("hgsc@3dgs",
    "upstream")`` (the authors' codec over our model)."""
    head, sep, base = method.partition("@")
    if head.endswith(UPSTREAM_SUFFIX):
        return head[: -len(UPSTREAM_SUFFIX)] + sep + base, UPSTREAM
    return method, "ours"


def upstream_id(method: str) -> str:
    """The run id of a method's upstream implementation: ``gns`` -> ``gns~upstream``,
    ``hgsc@3dgs`` -> ``hgsc~upstream@3dgs`` (the same input model)."""
    head, sep, base = method.partition("@")
    return head + UPSTREAM_SUFFIX + sep + base
