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
    """``"gns~upstream"`` -> ``("gns", "upstream")``; ``"gns"`` -> ``("gns", "ours")``."""
    if method.endswith(UPSTREAM_SUFFIX):
        return method[: -len(UPSTREAM_SUFFIX)], UPSTREAM
    return method, "ours"


def upstream_id(method: str) -> str:
    """The run id of a method's upstream implementation: ``gns`` -> ``gns~upstream``."""
    return method + UPSTREAM_SUFFIX
