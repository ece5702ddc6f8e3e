"""gs.data.download against a local HTTP server: checksums, safe and atomic extraction."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from gs.data.download import (
    DownloadError,
    UnsafeArchiveError,
    archive_name,
    download,
    extract,
    is_google_drive,
)


@pytest.fixture()
def served(tmp_path):
    """A folder served over HTTP on 127.0.0.1 (random port); yields (folder, base_url)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


def _make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _make_tar(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return path


SCENE = {"scene/images/0000.png": b"png-bytes", "scene/sparse/0/cameras.txt": b"# cameras\n"}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_download_and_extract(served, tmp_path, kind):
    www, base = served
    arch = _make_zip(www / "data.zip", SCENE) if kind == "zip" else _make_tar(www / "data.tar.gz", SCENE)
    digest = hashlib.sha256(arch.read_bytes()).hexdigest()
    dl = tmp_path / "dl"
    rec = download(f"{base}/{arch.name}", dl / arch.name, sha256=digest)
    assert rec["verified"] and rec["sha256"] == digest and rec["bytes"] == arch.stat().st_size
    out = extract(dl / arch.name, tmp_path / "data" / "ds")
    assert (out / "scene/images/0000.png").read_bytes() == b"png-bytes"
    assert (out / "scene/sparse/0/cameras.txt").exists()
    assert _leftovers(tmp_path / "data") == ["ds"]  # no temp folder left beside the target
    assert _leftovers(dl) == [arch.name]  # no .part file


def test_download_records_sha256_when_not_given(served, tmp_path):
    www, base = served
    (www / "f.bin").write_bytes(b"hello")
    rec = download(f"{base}/f.bin", tmp_path / "f.bin")
    assert rec["sha256"] == hashlib.sha256(b"hello").hexdigest() and rec["verified"] is False


def test_sha256_mismatch_leaves_nothing(served, tmp_path):
    www, base = served
    _make_zip(www / "data.zip", SCENE)
    dl = tmp_path / "dl"
    url = f"{base}/data.zip"
    with pytest.raises(DownloadError) as e:
        download(url, dl / "data.zip", sha256="0" * 64)
    msg = str(e.value)
    assert "sha256 mismatch" in msg and url in msg
    assert _leftovers(dl) == []


def test_http_error_names_url(served, tmp_path):
    _, base = served
    with pytest.raises(DownloadError, match="missing.zip.*404"):
        download(f"{base}/missing.zip", tmp_path / "dl" / "missing.zip")
    assert _leftovers(tmp_path / "dl") == []


@pytest.mark.parametrize(
    "maker,needle",
    [
        (lambda p: _make_zip(p / "bad.zip", {**SCENE, "../evil.txt": b"x"}), ".."),
        (lambda p: _make_zip(p / "bad.zip", {**SCENE, "/etc/evil.txt": b"x"}), "absolute"),
        (lambda p: _make_tar(p / "bad.tar.gz", {**SCENE, "scene/../../evil.txt": b"x"}), ".."),
        (lambda p: _make_tar(p / "bad.tar.gz", {**SCENE, "/tmp/evil.txt": b"x"}), "absolute"),
        (lambda p: _make_tar(p / "bad.tar.gz", SCENE, links={"scene/link": "../../../etc/passwd"}), "outside"),
        (lambda p: _make_tar(p / "bad.tar.gz", SCENE, links={"scene/link": "/etc/passwd"}), "absolute"),
    ],
    ids=["zip-dotdot", "zip-absolute", "tar-dotdot", "tar-absolute", "tar-symlink-out", "tar-symlink-abs"],
)
def test_unsafe_archive_rejected_and_nothing_left(tmp_path, maker, needle):
    src = tmp_path / "src"
    src.mkdir()
    arch = maker(src)
    data = tmp_path / "data"
    with pytest.raises(UnsafeArchiveError) as e:
        extract(arch, data / "ds")
    assert needle in str(e.value) and str(arch) in str(e.value)
    assert _leftovers(data) == []
    assert not (tmp_path / "evil.txt").exists()


def test_zip_symlink_out_rejected(tmp_path):
    arch = tmp_path / "link.zip"
    with zipfile.ZipFile(arch, "w") as zf:
        info = zipfile.ZipInfo("scene/link")
        info.create_system = 3
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "../../outside")
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract(arch, tmp_path / "data" / "ds")
    assert _leftovers(tmp_path / "data") == []


def test_inner_symlink_is_fine(tmp_path):
    arch = _make_tar(tmp_path / "ok.tar.gz", SCENE, links={"scene/img": "images"})
    out = extract(arch, tmp_path / "ds")
    assert (out / "scene/img/0000.png").read_bytes() == b"png-bytes"


def test_corrupt_archive_leaves_nothing(tmp_path):
    arch = tmp_path / "broken.zip"
    good = _make_zip(tmp_path / "good.zip", SCENE).read_bytes()
    arch.write_bytes(good[: len(good) // 2])
    data = tmp_path / "data"
    with pytest.raises(Exception) as e:
        extract(arch, data / "ds")
    assert "broken.zip" in str(e.value)
    assert _leftovers(data) == []


def test_existing_target_not_clobbered(tmp_path):
    arch = _make_zip(tmp_path / "a.zip", SCENE)
    (tmp_path / "ds").mkdir()
    with pytest.raises(FileExistsError):
        extract(arch, tmp_path / "ds")
    out = extract(arch, tmp_path / "ds", overwrite=True)
    assert (out / "scene/images/0000.png").exists()


def test_url_helpers():
    assert archive_name("https://example.org/a/b/tandt_db.zip?x=1") == "tandt_db.zip"
    assert is_google_drive("https://drive.google.com/file/d/abc/view")
    assert is_google_drive("gdrive:abc") and not is_google_drive("http://127.0.0.1/x.zip")
