"""Methods of the benchmark: one file per paper, registered in :mod:`gs.methods.registry`."""

from gs.methods.registry import METHODS, MethodSpec, get_method, list_methods

__all__ = ["METHODS", "MethodSpec", "get_method", "list_methods"]
