"""A small versioned, checksummed multi-array file format for codec bitstreams.

Layout (little endian)::

    magic b"GSBC" | version u16 | header length u32 | header crc32 u32 | header | payloads

    header  = n_arrays u16 | meta length u32 | meta (UTF-8 JSON object)
              then per array: name length u8 | name (UTF-8) | dtype length u8 | dtype
                              | ndim u8 | shape u64 x ndim | payload length u64 | payload crc32 u32
    payloads: the arrays' bytes, in header order, nothing after the last one.

``dtype`` is a numpy dtype string (``"<f4"``, ``"|u1"`` ...) of a C-ordered array, or
``"bytes"`` for an opaque byte string (e.g. a stream of :mod:`gs.codecs.entropy`), returned as
``bytes``. Any inconsistency - wrong magic or version, a header or payload checksum mismatch, a
file shorter or longer than its header says - raises :class:`gs.codecs.base.BitstreamError`
naming the file (and the array).
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from gs.codecs.base import BitstreamError

MAGIC = b"GSBC"
VERSION = 1
_PRE = struct.Struct("<4sHII")


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


def write_container(path: str | Path, arrays: dict[str, np.ndarray | bytes], meta: dict[str, Any] | None = None) -> int:
    """Write ``arrays`` (name -> array or bytes) and a JSON-able ``meta`` dict; returns the file
    size. Written to a temporary file and renamed, so a failed write leaves no partial file."""
    path = Path(path)
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
    header = _encode_header(entries, meta or {})
    blob = _PRE.pack(MAGIC, VERSION, len(header), zlib.crc32(header)) + header + b"".join(e[3] for e in entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)
    return len(blob)


def read_container(path: str | Path) -> tuple[dict[str, np.ndarray | bytes], dict[str, Any]]:
    """Read a container: (name -> array or bytes, meta). Raises BitstreamError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise BitstreamError(f"{path}: bitstream file is missing")
    data = path.read_bytes()
    return parse_container(data, str(path))


def parse_container(data: bytes, name: str = "container") -> tuple[dict[str, np.ndarray | bytes], dict[str, Any]]:
    if len(data) < _PRE.size:
        raise BitstreamError(f"{name}: truncated ({len(data)} bytes, not even a header)")
    magic, version, hlen, hcrc = _PRE.unpack_from(data)
    if magic != MAGIC:
        raise BitstreamError(f"{name}: not a GS Bench bitstream container (bad magic {magic!r})")
    if version != VERSION:
        raise BitstreamError(f"{name}: container version {version}, this reader knows version {VERSION}")
    if _PRE.size + hlen > len(data):
        raise BitstreamError(f"{name}: truncated inside the header ({len(data)} bytes)")
    header = data[_PRE.size:_PRE.size + hlen]
    if zlib.crc32(header) != hcrc:
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
    offset = _PRE.size + hlen
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
    return out, meta


class Container:
    """A container read from ``path``, with typed access whose errors name the file."""

    def __init__(self, path: str | Path) -> None:
        self.name = str(path)
        self.arrays, self.meta = read_container(path)

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


__all__ = ["MAGIC", "VERSION", "Container", "write_container", "read_container", "parse_container"]
