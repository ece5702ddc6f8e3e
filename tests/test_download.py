"""gs.data.download against a local HTTP server: checksums, safe and atomic extraction."""

from __future__ import annotations

import functools
import hashlib
import json
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


# ------------------------------------------------------------------------------ hostile archives
# Each archive below is built member by member in the order given (the order decides what a
# naive extractor would write through which link). "outside" is the folder that holds the
# target: nothing may ever appear there.
def _zip_entries(path: Path, entries: list[tuple[str, str, str | bytes]]) -> Path:
    """entries: (kind, name, data) with kind file, dir, symlink (data = target) or chr."""
    modes = {"file": 0o100644, "dir": 0o040755, "symlink": 0o120777, "chr": 0o020644}
    with zipfile.ZipFile(path, "w") as zf:
        for kind, name, data in entries:
            info = zipfile.ZipInfo(name + ("/" if kind == "dir" else ""))
            info.create_system = 3
            info.external_attr = modes[kind] << 16
            zf.writestr(info, data)
    return path


def _tar_entries(path: Path, entries: list[tuple[str, str, str | bytes]]) -> Path:
    """entries: (kind, name, data) with kind file, dir, symlink, hardlink (data = target) or chr."""
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
             "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE}
    with tarfile.open(path, "w") as tf:
        for kind, name, data in entries:
            info = tarfile.TarInfo(name)
            info.type = types[kind]
            if kind == "file":
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            if kind in ("symlink", "hardlink"):
                info.linkname = data
            tf.addfile(info)
    return path


# d/l -> ".." is inside on its own (d/.. is the root); d/l/l2 is created *through* d/l, i.e. in
# the root, and its ".." then leaves it; the last member writes through both links.
SCENE_ENTRIES = [("file", n, d) for n, d in SCENE.items()]
DOTDOT_CHAIN = [("dir", "d", b""), ("symlink", "d/l", ".."), ("symlink", "d/l/l2", ".."),
                ("file", "d/l/l2/evil.txt", b"pwned")]
HOSTILE = {
    "zip-dotdot-symlink-chain": ("zip", DOTDOT_CHAIN, "symlink"),
    "tar-dotdot-symlink-chain": ("tar", DOTDOT_CHAIN, "symlink"),
    # a chain whose links are each inside lexically, resolved only through the other link
    "zip-link-through-link": ("zip", [("dir", "d", b""), ("symlink", "d/up", ".."),
                                      ("symlink", "d/out", "up/..")], "outside"),
    "tar-link-through-link": ("tar", [("dir", "d", b""), ("symlink", "d/up", ".."),
                                      ("symlink", "d/out", "up/..")], "outside"),
    "zip-write-through-inner-link": ("zip", [*SCENE_ENTRIES, ("symlink", "scene/img", "images"),
                                             ("file", "scene/img/x.png", b"x")], "through the symlink"),
    "tar-absolute-path": ("tar", [("file", "/tmp/evil.txt", b"x")], "absolute"),
    "tar-hardlink-absolute": ("tar", [*SCENE_ENTRIES, ("hardlink", "scene/h", "/etc/passwd")], "absolute"),
    "tar-hardlink-out": ("tar", [*SCENE_ENTRIES, ("hardlink", "scene/h", "../secret")], ".."),
    "tar-hardlink-through-link": ("tar", [("dir", "d", b""), ("symlink", "d/up", ".."),
                                          ("symlink", "d/out", "up/.."),
                                          ("hardlink", "h", "d/out/secret")], "outside"),
    "tar-device": ("tar", [*SCENE_ENTRIES, ("chr", "scene/null", b"")], "device"),
    "zip-device": ("zip", [*SCENE_ENTRIES, ("chr", "scene/null", b"")], "device"),
    "zip-symlink-loop": ("zip", [("symlink", "a", "b"), ("symlink", "b", "a"),
                                 ("symlink", "c", "a/x")], "loop"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_refused_before_writing(tmp_path, case):
    fmt, entries, needle = HOSTILE[case]
    outside = tmp_path / "outside"
    (outside / "data").mkdir(parents=True)
    (outside / "secret").write_text("do not touch")
    make = _zip_entries if fmt == "zip" else _tar_entries
    arch = make(tmp_path / f"hostile.{fmt}", entries)
    with pytest.raises(UnsafeArchiveError) as e:
        extract(arch, outside / "data" / "ds")
    assert needle in str(e.value) and str(arch) in str(e.value)
    assert _leftovers(outside / "data") == []  # no partial target, no temporary folder
    assert _leftovers(outside) == ["data", "secret"]  # nothing escaped
    assert (outside / "secret").read_text() == "do not touch"


@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_archive_with_inner_link_chain_extracts(tmp_path, fmt):
    entries = [*SCENE_ENTRIES, ("symlink", "scene/a", "b"), ("symlink", "scene/b", "images"),
               ("symlink", "scene/up", "../scene/images"), ("hardlink", "scene/copy.png", "scene/images/0000.png")]
    if fmt == "zip":
        entries = entries[:-1]  # zip has no hard links
    make = _zip_entries if fmt == "zip" else _tar_entries
    out = extract(make(tmp_path / f"ok.{fmt}", entries), tmp_path / "data" / "ds")
    for link in ("a", "b", "up"):
        assert (out / "scene" / link / "0000.png").read_bytes() == b"png-bytes"
    if fmt == "tar":
        assert (out / "scene/copy.png").read_bytes() == b"png-bytes"
    assert _leftovers(tmp_path / "data") == ["ds"]


# ------------------------------------------------------------------------------ several archives
def _zip_folder(folder: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(folder.parent).as_posix())
    return dest


@pytest.mark.slow
def test_dataset_from_two_archives_fetches_each_scene_from_its_own(served, tmp_path):
    """Each scene is fetched from the archive that lists it, and only the archives the selected
    scenes need are downloaded (the pipeline, against a local HTTP server)."""
    import re

    import yaml
    from e2e_helpers import snakemake

    from gs.data import generate_scene

    www, base = served
    for name, seed in (("main", 0), ("extra", 1)):
        scene = generate_scene(tmp_path / "src" / f"{name}_scene", seed=seed, num_views=4, width=32, height=24,
                               num_points=100)
        _zip_folder(scene, www / f"{name}.zip")
    cfg = {
        "iterations": 10, "backend": "torch", "device": "cpu", "methods": {"3dgs": None},
        "datasets": {"two": {
            "source": "download",
            "archives": [{"url": f"{base}/main.zip", "scenes": ["main_scene"]},
                         {"url": f"{base}/extra.zip", "scenes": ["extra_scene"]}],
            "scenes": {"main_scene": None, "extra_scene": None}}},
    }
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    targets = [f"results/two/{s}/scene.json" for s in ("main_scene", "extra_scene")]
    run = snakemake(*targets, "--cores", "1", "--configfile", str(work / "config.yaml"), cwd=work)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for s, arch in (("main_scene", "main"), ("extra_scene", "extra")):
        manifest = json.loads((work / f"results/two/{s}/scene.json").read_text())
        assert manifest["path"] == f".data/extracted/{arch}/{s}" and manifest["num_train"] + manifest["num_test"] == 4
    assert sorted(p.name for p in (work / ".data" / "downloads").iterdir()) == [
        "extra.zip", "extra.zip.json", "main.zip", "main.zip.json"]

    # one scene selected: only its archive is in the DAG
    cfg["datasets"]["two"]["scenes"] = {"extra_scene": None}
    (work / "one.yaml").write_text(yaml.safe_dump(cfg))
    dry = snakemake("results/two/extra_scene/scene.json", "-n", "--forceall", "--configfile", str(work / "one.yaml"),
                    cwd=work)
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out
    assert set(re.findall(r"^download\s+(\d+)\s*$", out, flags=re.M)) == {"1"}, out
    assert "extra.zip" in out and "main.zip" not in out

    # a scene that no archive lists is one clear config error
    cfg["datasets"]["two"]["scenes"] = {"nowhere": None}
    (work / "bad.yaml").write_text(yaml.safe_dump(cfg))
    bad = snakemake("-n", "--configfile", str(work / "bad.yaml"), cwd=work)
    assert bad.returncode != 0 and "scene 'nowhere' is in none of its archives" in bad.stdout + bad.stderr
