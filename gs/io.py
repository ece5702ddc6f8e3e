"""Files every layer writes or checks: strict JSON written atomically, sha256 of files, and
the names downloaded archives are stored under.

Standard library only (no torch, no numpy import), so the DAG code and the download rules can
use it without loading the numeric stack; tensors and numpy values are converted through their
``tolist()``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import Any

_CHUNK = 1 << 20
ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2", ".txz", ".zip", ".tar")


# ------------------------------------------------------------------------------ JSON
def json_safe(x: Any) -> Any:
    """Plain JSON values from results: dict keys as strings, tuples as lists, tensors and
    numpy arrays/scalars through ``tolist()``, paths as strings, non-finite floats as None.
    Anything else is left as it is (``json.dump`` then names what it cannot write)."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    if isinstance(x, Path):
        return str(x)
    if callable(getattr(x, "tolist", None)):  # torch.Tensor, numpy arrays and scalars
        return json_safe(x.tolist())
    return x


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``json_safe(data)`` as strict JSON (no NaN/inf) to a temporary file in the same
    folder, then rename it over ``path``: readers (and Snakemake) never see a half-written
    file, and a failed write leaves the previous file as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(json_safe(data), f, indent=2, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ------------------------------------------------------------------------------ hashing
def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------ archives
def archive_name(url: str) -> str:
    """The file name a URL's archive is stored under (its last path component; ``gdrive:NAME``
    names it directly)."""
    if url.startswith("gdrive:"):
        return url.split(":", 1)[1]
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
    if not name:
        raise ValueError(f"cannot tell a file name from URL '{url}'; give 'archive:' in the config")
    return name


def archive_stem(name: str) -> str:
    """``"tandt_db.zip"`` -> ``"tandt_db"``: the folder an archive is extracted into."""
    for suf in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


__all__ = ["ARCHIVE_SUFFIXES", "archive_name", "archive_stem", "json_safe", "sha256_file", "write_json"]


def load_plugins(group: str, kind: type, what: str, unwrap: str | None = None) -> list[tuple[str, Any, str]]:
    """``(name, object, source)`` of every entry point of ``group`` whose object (or its
    attribute ``unwrap``) is a ``kind``. A plug-in that fails to load or is something else is
    skipped with a warning naming it: a broken plug-in must not hide the others."""
    import warnings
    from importlib.metadata import entry_points

    out = []
    for ep in entry_points(group=group):
        src = f"entry point {ep.name} = {ep.value}"
        try:
            obj = ep.load()
        except Exception as exc:
            warnings.warn(f"{what} not loaded ({src}): {type(exc).__name__}: {exc}", stacklevel=3)
            continue
        if unwrap:
            obj = getattr(obj, unwrap, obj)
        if not isinstance(obj, kind):
            warnings.warn(f"{what} not loaded ({src}): not a {kind.__name__}", stacklevel=3)
            continue
        out.append((ep.name, obj, src))
    return out
