"""Fetch and unpack datasets: HTTP(S) or Google Drive, sha256 check, safe zip/tar extraction.

Only the pipeline's data rules call this (library code never downloads behind the user's back).
Two promises:

* a download lands under its final name only when it is complete and, when a sha256 is given,
  verified; otherwise the partial file is removed and one :class:`DownloadError` names the URL;
* an archive is checked member by member *before* anything is written (absolute paths, ``..``
  components, links that point outside the target, device files are refused), extracted into
  a temporary folder next to the target and renamed into place at the end, so a failed or
  interrupted extraction never leaves a half-extracted dataset under the target's name.
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
from typing import Any

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


def _check_link(archive: Path, name: PurePosixPath, target: str, hard: bool = False) -> None:
    """A link must resolve (lexically) to a path inside the extraction root."""
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        raise UnsafeArchiveError(f"'{archive}': link '{name}' points to absolute path '{target}'; refusing to extract")
    base = PurePosixPath(".") if hard else name.parent
    depth = 0
    for part in (base / target).parts:
        if part in ("", "."):
            continue
        depth += -1 if part == ".." else 1
        if depth < 0:
            raise UnsafeArchiveError(
                f"'{archive}': link '{name}' -> '{target}' points outside the target folder; refusing to extract"
            )


def _zip_is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _extract_zip(archive: Path, root: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        plan = []
        for info in infos:  # check everything before writing anything
            rel = _check_name(archive, info.filename)
            link = None
            if _zip_is_symlink(info):
                link = zf.read(info).decode("utf-8")
                _check_link(archive, rel, link)
            plan.append((info, rel, link))
        for info, rel, link in plan:
            out = root / rel
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            if link is not None:
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
        for m in members:  # check everything before writing anything
            rel = _check_name(archive, m.name)
            if m.issym():
                _check_link(archive, rel, m.linkname)
            elif m.islnk():
                _check_name(archive, m.linkname)
                _check_link(archive, rel, m.linkname, hard=True)
            elif not (m.isfile() or m.isdir()):
                raise UnsafeArchiveError(f"'{archive}': member '{m.name}' is a device or fifo; refusing to extract")
        if hasattr(tarfile, "data_filter"):  # belt and braces on Pythons that have it
            tf.extractall(root, members=members, filter="data")
        else:  # pragma: no cover - Python < 3.10.12
            tf.extractall(root, members=members)


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
