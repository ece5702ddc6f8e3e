"""Deviations from the authors' code, as data: one ``<method id>.yaml`` per method in this
folder (format: README.md here), read by :func:`load_fidelity` into a :class:`Fidelity`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEVIATION_KEYS = ("aspect", "upstream", "ours", "why", "effect")


@dataclass(frozen=True)
class Deviation:
    """One difference between our code and the authors' code at the pinned commit."""

    aspect: str  # what differs, e.g. "opacity learning rate"
    upstream: str  # file:line at the pinned commit, and what it does there
    ours: str  # what we do
    why: str  # why we differ (or that we follow the paper, or a bug we do not copy)
    effect: str  # the measured effect, or "unmeasured"


@dataclass(frozen=True)
class Fidelity:
    """The authors' code (``repository`` URL, ``commit`` or "unpinned") and our deviations."""

    repository: str
    commit: str
    deviations: tuple[Deviation, ...] = ()


def load_fidelity(path: str | Path) -> Fidelity:
    """Read a deviations file (format: ``gs/methods/deviations/README.md``); every problem is
    one ValueError naming the file and the record."""
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping with repository, commit, deviations")
    missing = [k for k in ("repository", "commit", "deviations") if k not in doc]
    unknown = sorted(set(doc) - {"repository", "commit", "branch", "deviations"})
    if missing or unknown:
        raise ValueError(f"{path}: missing keys {missing}, unknown keys {unknown} "
                         "(allowed: repository, commit, branch, deviations)")
    for key in ("repository", "commit"):
        if not isinstance(doc[key], str) or not doc[key].strip():
            raise ValueError(f"{path}: '{key}' must be a non-empty string")
    if not isinstance(doc["deviations"], list):
        raise ValueError(f"{path}: 'deviations' must be a list of mappings")
    devs = []
    for i, rec in enumerate(doc["deviations"]):
        where = f"{path}: deviation {i + 1}"
        if not isinstance(rec, dict):
            raise ValueError(f"{where}: expected a mapping with keys {list(DEVIATION_KEYS)}")
        if set(rec) != set(DEVIATION_KEYS):
            raise ValueError(f"{where} ({rec.get('aspect', '?')}): keys must be exactly {list(DEVIATION_KEYS)}, "
                             f"got {sorted(rec)}")
        bad = [k for k in DEVIATION_KEYS if not isinstance(rec[k], str) or not rec[k].strip()]
        if bad:
            raise ValueError(f"{where} ({rec.get('aspect', '?')}): {bad} must be non-empty text")
        devs.append(Deviation(**{k: rec[k].strip() for k in DEVIATION_KEYS}))
    return Fidelity(doc["repository"].strip(), str(doc["commit"]).strip(), tuple(devs))
