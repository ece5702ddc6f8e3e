"""A small versioned, checksummed multi-array file format for codec bitstreams.

Layout (little endian), version 2::

    magic b"GSBC" | version u16 | stream id 16 bytes | header length u32
        | header crc32 u32 (over stream id + header) | header | payloads

    header  = n_arrays u16 | meta length u32 | meta (UTF-8 JSON object)
              then per array: name length u8 | name (UTF-8) | dtype length u8 | dtype
                              | ndim u8 | shape u64 x ndim | payload length u64 | payload crc32 u32
    payloads: the arrays' bytes, in header order, nothing after the last one.

``dtype`` is a numpy dtype string (``"<f4"``, ``"|u1"`` ...) of a C-ordered array, or
``"bytes"`` for an opaque byte string (e.g. a stream of :mod:`gs.codecs.entropy`), returned as
``bytes``. Any inconsistency - wrong magic or version, a header or payload checksum mismatch, a
file shorter or longer than its header says - raises :class:`gs.codecs.base.BitstreamError`
naming the file (and the array).

The files of one bitstream are bound together (:func:`write_container_set`): each carries the
same stream id, a hash over the contents of all of them, and :func:`read_container_set`
refuses a set whose ids differ (a file from another encode), naming that file. Version 1
(no stream id: ``magic | version | header length | header crc32 | header | payloads``) still
reads; its files cannot be checked for belonging together. Any other version is a clear
version error.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from gs.codecs.base import BitstreamError
from gs.codecs.entropy import decompress_bytes

MAGIC = b"GSBC"
VERSION = 2
READ_VERSIONS = (1, 2)
_MAGIC_VERSION = struct.Struct("<4sH")
_PRE = {1: struct.Struct("<4sHII"), 2: struct.Struct("<4sH16sII")}


def _encode_header(entries: list[tuple[str, str, tuple[int, ...], bytes]], meta: dict[str, Any]) -> bytes:
    meta_b = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    parts = [struct.pack("<HI", len(entries), len(meta_b)), meta_b]
    for name, dtype, shape, payload in entries:
        nb, db = name.encode(), dtype.encode()
        if len(nb) > 255 or len(db) > 255 or len(shape) > 255:
            raise ValueError(f"array '{name}': name, dtype or rank too long for the container")
        parts += [struct.pack("<B", len(nb)), nb, struct.pack("<B", len(db)), db, struct.pack("<B", len(shape))]
        parts += [struct.pack(f"<{len(shape)}Q", *shape), struct.pack("<QI", len(payload), zlib.crc32(payload))]
    return b"".join(parts)


def _serialize(arrays: dict[str, np.ndarray | bytes], meta: dict[str, Any] | None) -> tuple[bytes, bytes]:
    """(header, payloads) of a container holding ``arrays`` and ``meta``."""
    entries = []
    for name, value in arrays.items():
        if isinstance(value, (bytes, bytearray, memoryview)):
            b = bytes(value)
            entries.append((name, "bytes", (len(b),), b))
        else:
            a = np.asarray(value)  # (not ascontiguousarray: it turns 0-d arrays into 1-d)
            if not a.flags.c_contiguous:
                a = a.copy(order="C")
            if a.dtype.hasobject:
                raise TypeError(f"array '{name}': object arrays cannot be stored")
            entries.append((name, a.dtype.str, tuple(int(s) for s in a.shape), a.tobytes()))
    return _encode_header(entries, meta or {}), b"".join(e[3] for e in entries)


def _write(path: Path, header: bytes, payloads: bytes, stream_id: bytes) -> int:
    """Write one file through a temporary file and a rename (a failed write leaves no file)."""
    blob = _PRE[VERSION].pack(MAGIC, VERSION, stream_id, len(header), zlib.crc32(stream_id + header))
    blob += header + payloads
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)
    return len(blob)


def write_container_set(files: Mapping[str | Path, tuple[dict[str, np.ndarray | bytes], dict[str, Any]]]
                        ) -> dict[str, int]:
    """Write the files of one bitstream (path -> (arrays, meta)), bound together by one stream
    id: a hash over every file's header and payloads, so identical encodes write identical
    files and a file from another encode carries another id. Returns path -> file size."""
    parts = {str(path): _serialize(arrays, meta) for path, (arrays, meta) in files.items()}
    h = hashlib.sha256()
    for header, payloads in parts.values():
        h.update(struct.pack("<QQ", len(header), len(payloads)))
        h.update(header)
        h.update(payloads)
    stream_id = h.digest()[:16]
    return {path: _write(Path(path), header, payloads, stream_id) for path, (header, payloads) in parts.items()}


def write_container(path: str | Path, arrays: dict[str, np.ndarray | bytes], meta: dict[str, Any] | None = None) -> int:
    """Write ``arrays`` (name -> array or bytes) and a JSON-able ``meta`` dict as a set of one
    file; returns the file size."""
    return write_container_set({path: (arrays, meta or {})})[str(path)]


def read_container(path: str | Path) -> tuple[dict[str, np.ndarray | bytes], dict[str, Any]]:
    """Read a container: (name -> array or bytes, meta). Raises BitstreamError naming the file."""
    c = Container(path)
    return c.arrays, c.meta


def parse_container(data: bytes, name: str = "container") -> tuple[dict[str, np.ndarray | bytes], dict[str, Any]]:
    """:func:`read_container` of the bytes ``data`` (``name`` names them in errors)."""
    arrays, meta, _ = _parse(data, name)
    return arrays, meta


def _parse(data: bytes, name: str) -> tuple[dict[str, np.ndarray | bytes], dict[str, Any], bytes | None]:
    """(arrays, meta, stream id or None for version 1) of a container's bytes."""
    if len(data) < _MAGIC_VERSION.size:
        raise BitstreamError(f"{name}: truncated ({len(data)} bytes, not even a header)")
    magic, version = _MAGIC_VERSION.unpack_from(data)
    if magic != MAGIC:
        raise BitstreamError(f"{name}: not a GS Bench bitstream container (bad magic {magic!r})")
    if version not in READ_VERSIONS:
        raise BitstreamError(f"{name}: container version {version}, this reader knows versions "
                             f"{', '.join(map(str, READ_VERSIONS))} (written by another release of GS Bench?)")
    pre = _PRE[version]
    if len(data) < pre.size:
        raise BitstreamError(f"{name}: truncated ({len(data)} bytes, not even a header)")
    if version == 1:
        _, _, hlen, hcrc = pre.unpack_from(data)
        stream_id = None
    else:
        _, _, stream_id, hlen, hcrc = pre.unpack_from(data)
    if pre.size + hlen > len(data):
        raise BitstreamError(f"{name}: truncated inside the header ({len(data)} bytes)")
    header = data[pre.size:pre.size + hlen]
    if zlib.crc32((stream_id or b"") + header) != hcrc:
        raise BitstreamError(f"{name}: header checksum mismatch (corrupt file)")
    try:
        pos = 0
        n, mlen = struct.unpack_from("<HI", header, pos)
        pos += 6
        meta = json.loads(header[pos:pos + mlen].decode())
        pos += mlen
        entries = []
        for _ in range(n):
            (ln,) = struct.unpack_from("<B", header, pos)
            pos += 1
            aname = header[pos:pos + ln].decode()
            pos += ln
            (ld,) = struct.unpack_from("<B", header, pos)
            pos += 1
            dtype = header[pos:pos + ld].decode()
            pos += ld
            (nd,) = struct.unpack_from("<B", header, pos)
            pos += 1
            shape = struct.unpack_from(f"<{nd}Q", header, pos)
            pos += 8 * nd
            length, crc = struct.unpack_from("<QI", header, pos)
            pos += 12
            entries.append((aname, dtype, tuple(shape), length, crc))
        if pos != len(header):
            raise ValueError("trailing bytes in the header")
    except (struct.error, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise BitstreamError(f"{name}: malformed header ({exc})") from exc
    offset = pre.size + hlen
    total = offset + sum(e[3] for e in entries)
    if total != len(data):
        kind = "truncated" if len(data) < total else "has trailing data"
        raise BitstreamError(f"{name}: file {kind} ({len(data)} bytes, header says {total})")
    out: dict[str, np.ndarray | bytes] = {}
    for aname, dtype, shape, length, crc in entries:
        payload = data[offset:offset + length]
        offset += length
        if zlib.crc32(payload) != crc:
            raise BitstreamError(f"{name}: array '{aname}' checksum mismatch (corrupt data)")
        if dtype == "bytes":
            out[aname] = payload
            continue
        try:
            dt = np.dtype(dtype)
        except TypeError as exc:
            raise BitstreamError(f"{name}: array '{aname}' has an unknown dtype '{dtype}'") from exc
        if dt.hasobject or int(np.prod(shape, dtype=np.int64)) * dt.itemsize != length:
            raise BitstreamError(f"{name}: array '{aname}' length {length} does not match {dtype}{list(shape)}")
        out[aname] = np.frombuffer(payload, dtype=dt).reshape(shape).copy()
    return out, meta, stream_id


class Container:
    """A container read from ``path``, with typed access whose errors name the file."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        self.name = str(path)
        if not path.is_file():
            raise BitstreamError(f"{path}: bitstream file is missing")
        self.arrays, self.meta, self.stream_id = _parse(path.read_bytes(), self.name)

    def error(self, message: str) -> BitstreamError:
        return BitstreamError(f"{self.name}: {message}")

    def check_format(self, fmt: str, versions: tuple[int, ...], title: str) -> int:
        """The format version of the meta; a clear error for another format or version."""
        if self.meta.get("format") != fmt:
            raise self.error(f"not a {title} bitstream (format {self.meta.get('format')!r})")
        version = self.meta.get("version")
        if version not in versions:
            raise self.error(f"{title} format version {version}, this decoder reads "
                             f"{', '.join(map(str, versions))}")
        return int(version)

    def has(self, name: str) -> bool:
        return name in self.arrays

    def stream(self, name: str) -> bytes:
        """The byte string ``name``."""
        a = self.arrays.get(name)
        if a is None:
            raise self.error(f"array '{name}' is missing")
        if not isinstance(a, bytes):
            raise self.error(f"array '{name}' should be a byte stream")
        return a

    def floats(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The finite float32 array ``name`` of ``shape``, stored as is or as a compressed byte
        stream of :func:`gs.codecs.entropy.compress_bytes`."""
        v = self.arrays.get(name)
        if isinstance(v, bytes):
            v = np.frombuffer(decompress_bytes(v, f"{self.name}: array '{name}'"), dtype="<f4")
        elif v is None:
            raise self.error(f"array '{name}' is missing")
        if v.dtype != np.dtype("<f4") or v.size != int(np.prod(shape)):
            raise self.error(f"array '{name}' has {v.size} {v.dtype} values, expected float32{list(shape)}")
        v = v.reshape(shape).copy()
        if not np.isfinite(v).all():
            raise self.error(f"array '{name}' holds non-finite values")
        return v

    def array(self, name: str, dtype: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """The array ``name``, which must have ``dtype`` (and ``shape``) and, if float, be finite."""
        a = self.arrays.get(name)
        if a is None:
            raise self.error(f"array '{name}' is missing")
        if isinstance(a, bytes) or a.dtype != np.dtype(dtype) or (shape is not None and a.shape != shape):
            got = "bytes" if isinstance(a, bytes) else f"{a.dtype}{list(a.shape)}"
            raise self.error(f"array '{name}' is {got}, expected {dtype}{list(shape or ())}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise self.error(f"array '{name}' holds non-finite values")
        return a


def read_container_set(paths: Mapping[str, str | Path]) -> dict[str, Container]:
    """Read the files of one bitstream (key -> path) and check that they belong together:
    every file carries the stream id of the first one. Version 1 files (no stream id) are read
    unchecked only if every file of the set is version 1."""
    files = {key: Container(path) for key, path in paths.items()}
    first = next(iter(files.values()), None)
    for c in files.values():
        if c.stream_id != first.stream_id:
            ids = [x.hex() if x is not None else "none (an older release)" for x in (c.stream_id, first.stream_id)]
            raise c.error(f"belongs to another encode than {Path(first.name).name} (stream id {ids[0]}, "
                          f"{Path(first.name).name} has {ids[1]}): the files of a bitstream must all come "
                          "from one encode")
    return files


__all__ = ["MAGIC", "VERSION", "READ_VERSIONS", "Container", "write_container", "write_container_set",
           "read_container", "read_container_set", "parse_container"]
