"""Fetch and unpack datasets: HTTP(S) or Google Drive, sha256 check, safe zip/tar extraction.

Only the pipeline's data rules call this (library code never downloads behind the user's back).
Two promises:

* a download lands under its final name only when it is complete and, when a sha256 is given,
  verified; otherwise the partial file is removed and one :class:`DownloadError` names the URL;
* an archive is checked as a whole *before* anything is written, with the same rules for zip
  and tar: absolute paths, ``..`` components, device files and fifos, members written through
  one of the archive's own symlinks, and symlink or hard link targets that resolve outside the
  target (every link of the archive followed, so chains of ``..`` links are caught) are
  refused. Each write is checked again against the real target folder (tar's ``data`` filter,
  and its equivalent for zip). Everything is extracted into a temporary folder next to the
  target and renamed into place at the end, so a refused, failed or interrupted extraction
  never leaves a half-extracted dataset under the target's name.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from gs.io import archive_name, sha256_file  # noqa: F401  (re-exported for callers)

CHUNK = 1 << 20
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class DownloadError(RuntimeError):
    """A download that failed or did not match its checksum; the message names the URL."""


class UnsafeArchiveError(ValueError):
    """An archive with a member that would land outside the target folder."""


class ArchiveError(ValueError):
    """An archive that cannot be read (unknown format, corrupt)."""


# ------------------------------------------------------------------------------ hashing
# ------------------------------------------------------------------------------ download
def is_google_drive(url: str) -> bool:
    if url.startswith("gdrive:"):
        return True
    host = urllib.parse.urlparse(url).netloc.lower()
    return host in ("drive.google.com", "docs.google.com", "drive.usercontent.google.com")


def _fetch_http(url: str, dest: Path, timeout: float) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "gs-bench"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as out:
            shutil.copyfileobj(resp, out, CHUNK)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"download of '{url}' failed: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"download of '{url}' failed: {reason}") from e


def _fetch_gdrive(url: str, dest: Path) -> None:
    try:
        import gdown
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise DownloadError(f"'{url}' is on Google Drive: install gdown (pip install gdown)") from e
    kwargs: dict[str, Any] = {"output": str(dest), "quiet": True}
    if url.startswith("gdrive:"):
        kwargs["id"] = url.split(":", 1)[1]
    else:
        kwargs["url"] = url
        kwargs["fuzzy"] = True
    try:
        got = gdown.download(**kwargs)
    except Exception as e:  # gdown raises a zoo of exception types
        raise DownloadError(f"download of '{url}' from Google Drive failed: {e}") from e
    if not got or not dest.exists():
        raise DownloadError(f"download of '{url}' from Google Drive failed (no file received)")


def download(url: str, dest: str | Path, *, sha256: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """Download ``url`` to ``dest``; verify ``sha256`` when given, record it when not.

    The file is written next to ``dest`` under a temporary name and renamed only when it is
    complete and verified. Returns ``{url, path, sha256, bytes, verified}``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if is_google_drive(url):
            _fetch_gdrive(url, tmp)
        else:
            _fetch_http(url, tmp, timeout)
        digest = sha256_file(tmp)
        if sha256 and digest.lower() != sha256.strip().lower():
            raise DownloadError(
                f"sha256 mismatch for '{url}': expected {sha256.strip().lower()}, got {digest} "
                f"({tmp.stat().st_size} bytes); the file was removed"
            )
        size = tmp.stat().st_size
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"url": url, "path": str(dest), "sha256": digest, "bytes": size, "verified": bool(sha256)}


# ------------------------------------------------------------------------------ extraction
def archive_format(path: str | Path) -> str:
    name = Path(path).name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(ARCHIVE_SUFFIXES):
        return "tar"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise ArchiveError(f"'{path}': not a zip or tar archive")


def _check_name(archive: Path, name: str) -> PurePosixPath:
    """Refuse absolute names, drive letters and ``..``; return the normalised relative path."""
    norm = name.replace("\\", "/")
    p = PurePosixPath(norm)
    if norm.startswith("/") or p.is_absolute() or (len(norm) > 1 and norm[1] == ":"):
        raise UnsafeArchiveError(f"'{archive}': member '{name}' has an absolute path; refusing to extract")
    if ".." in p.parts:
        raise UnsafeArchiveError(f"'{archive}': member '{name}' contains '..'; refusing to extract")
    parts = [q for q in p.parts if q not in ("", ".")]
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


MAX_LINK_HOPS = 40  # as the kernel's ELOOP limit


def _is_absolute(target: str) -> bool:
    return target.startswith(("/", "\\")) or (len(target) > 1 and target[1] == ":")


def _resolve(archive: Path, rel: PurePosixPath, links: Mapping[PurePosixPath, str], what: str) -> PurePosixPath:
    """Resolve ``rel`` (relative to the extraction root) the way the kernel will once every
    symlink of the archive exists: each component that is one of the archive's links is replaced
    by its target (chains included), ``..`` pops a real component. Raises when the walk leaves
    the root, meets an absolute target or loops."""
    todo, done, hops = list(rel.parts), [], 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                raise UnsafeArchiveError(f"'{archive}': {what} resolves outside the target folder; refusing to extract")
            done.pop()
            continue
        here = PurePosixPath(*done, part)
        if here in links:
            hops += 1
            target = links[here]
            if hops > MAX_LINK_HOPS:
                raise UnsafeArchiveError(f"'{archive}': {what} runs into a symlink loop; refusing to extract")
            if _is_absolute(target):
                raise UnsafeArchiveError(
                    f"'{archive}': {what} goes through link '{here}' to absolute path '{target}'; refusing to extract")
            todo = list(PurePosixPath(target.replace("\\", "/")).parts) + todo
            continue
        done.append(part)
    return PurePosixPath(*done) if done else PurePosixPath(".")


def _check_plan(archive: Path, entries: list[tuple[PurePosixPath, str, str | None]]) -> None:
    """Check a whole archive before anything is written.

    ``entries`` are (normalised name, kind, link target) with kind ``file``, ``dir``, ``symlink``
    or ``hardlink``. Rules (the same for zip and tar): no member is written through one of the
    archive's symlinks; a name that is a symlink appears once; every symlink target and hard
    link target, resolved through all the archive's symlinks, stays inside the target folder.
    """
    links = {name: target for name, kind, target in entries if kind == "symlink"}
    seen: dict[PurePosixPath, str] = {}
    for name, kind, target in entries:
        for parent in name.parents:
            if parent in links:
                raise UnsafeArchiveError(
                    f"'{archive}': member '{name}' is written through the symlink '{parent}'; refusing to extract")
        if name in seen and "symlink" in (kind, seen[name]):
            raise UnsafeArchiveError(f"'{archive}': member '{name}' appears twice, once as a symlink; refusing to extract")
        seen[name] = kind
        if kind == "symlink":
            if _is_absolute(target):
                raise UnsafeArchiveError(
                    f"'{archive}': link '{name}' points to absolute path '{target}'; refusing to extract")
            _resolve(archive, name.parent / target.replace("\\", "/"), links,
                     f"link '{name}' -> '{target}' (points outside the target folder)")
        elif kind == "hardlink":
            if _is_absolute(target):
                raise UnsafeArchiveError(
                    f"'{archive}': hard link '{name}' points to absolute path '{target}'; refusing to extract")
            _resolve(archive, PurePosixPath(target.replace("\\", "/")), links,
                     f"hard link '{name}' -> '{target}' (points outside the target folder)")


def _inside(root: Path, path: Path) -> bool:
    """Whether ``path`` (its existing symlinks followed) lies in ``root`` (already real)."""
    real = Path(os.path.realpath(path))
    return real == root or root in real.parents


def _zip_kind(archive: Path, info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if info.create_system != 3 or not stat.S_IFMT(mode):  # no Unix file type recorded
        return "dir" if info.is_dir() else "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode) or info.is_dir():
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    raise UnsafeArchiveError(f"'{archive}': member '{info.filename}' is a device or fifo; refusing to extract")


def _extract_zip(archive: Path, root: Path) -> None:
    real_root = Path(os.path.realpath(root))
    with zipfile.ZipFile(archive) as zf:
        plan = []
        for info in zf.infolist():  # check everything before writing anything
            rel, kind = _check_name(archive, info.filename), _zip_kind(archive, info)
            link = zf.read(info).decode("utf-8") if kind == "symlink" else None
            plan.append((info, rel, kind, link))
        _check_plan(archive, [(rel, kind, link) for _, rel, kind, link in plan])
        for info, rel, kind, link in plan:
            out = root / rel
            if not _inside(real_root, out.parent):  # the floor, as tar's data filter
                raise UnsafeArchiveError(f"'{archive}': member '{rel}' would land outside the target folder")
            if kind == "dir":
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            if kind == "symlink":
                os.symlink(link, out)
                continue
            with zf.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(out, mode | 0o600)


def _extract_tar(archive: Path, root: Path) -> None:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        entries = []
        for m in members:  # check everything before writing anything
            rel = _check_name(archive, m.name)
            if m.issym():
                entries.append((rel, "symlink", m.linkname))
            elif m.islnk():
                entries.append((rel, "hardlink", m.linkname))
            elif m.isfile() or m.isdir():
                entries.append((rel, "dir" if m.isdir() else "file", None))
            else:
                raise UnsafeArchiveError(f"'{archive}': member '{m.name}' is a device or fifo; refusing to extract")
        _check_plan(archive, entries)
        try:
            tf.extractall(root, members=members, filter="data")  # the floor
        except tarfile.FilterError as e:
            raise UnsafeArchiveError(f"'{archive}': {e}; refusing to extract") from e


def extract(archive: str | Path, target: str | Path, *, overwrite: bool = False) -> Path:
    """Extract ``archive`` into the folder ``target`` safely and atomically.

    Everything goes to a temporary folder beside ``target`` that is renamed to ``target`` only
    once extraction has succeeded; on any error the temporary folder is removed and ``target``
    is left as it was (absent, or the previous content when ``overwrite``).
    """
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise ArchiveError(f"'{archive}': archive not found")
    if target.exists() and not overwrite:
        raise FileExistsError(f"'{target}' already exists; remove it or pass overwrite=True")
    fmt = archive_format(archive)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".extracting", dir=target.parent))
    try:
        try:
            (_extract_zip if fmt == "zip" else _extract_tar)(archive, tmp)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
            raise ArchiveError(f"'{archive}': corrupt {fmt} archive ({e})") from e
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


# ------------------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gs.data.download", description=__doc__.split("\n")[0])
    ap.add_argument("url")
    ap.add_argument("dest", help="file the download is saved as")
    ap.add_argument("--sha256", default=None)
    ap.add_argument("--extract-to", default=None, help="folder to extract the archive into")
    args = ap.parse_args(argv)
    record = download(args.url, args.dest, sha256=args.sha256)
    if args.extract_to:
        extract(args.dest, args.extract_to)
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
