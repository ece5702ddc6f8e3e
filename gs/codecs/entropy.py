"""Entropy-coding helpers shared by the codecs (NSVQ-GS index streams, HGSC attributes).

Two self-describing stream kinds, each with a small header and CRC32 checksums so that a
corrupt or truncated stream raises :class:`gs.codecs.base.BitstreamError` instead of decoding
to a silently wrong model:

- **symbol streams** (:func:`encode_symbols` / :func:`decode_symbols`): integers in
  ``[0, alphabet_size)``, e.g. codebook indices. The encoder measures every available method and
  keeps the smallest: fixed-width MSB-first bit packing (the upstream NSVQ-GS layout),
  zlib / lzma / zstd (if the ``zstandard`` package is installed) over the packed bits, and a
  static categorical model (symbol counts sent in the header) driving constriction's ANS coder.
- **byte streams** (:func:`compress_bytes` / :func:`decompress_bytes`): any bytes, e.g. float32
  arrays; measured best of raw / zlib / lzma / zstd, each with and without a byte shuffle
  (byte-plane transposition, as blosc does), which helps float data.

With the default method lists lzma is tried only on inputs up to :data:`LZMA_MAX_BYTES` (it is
slow and gains ~1 % over zlib on float data, nothing over ANS on index streams); the decoder
reads every method whatever the size.

Header of a symbol stream (little endian), 26 bytes:
``b"GSES" | version u8 | method u8 | alphabet u32 | n u64 | payload crc32 u32 | symbols crc32 u32``
Header of a byte stream, 23 bytes:
``b"GSEB" | version u8 | method u8 | shuffle u8 | raw length u64 | payload crc32 u32 | raw crc32 u32``
"""

from __future__ import annotations

import lzma
import math
import struct
import zlib
from typing import Iterable

import numpy as np

from gs.codecs.base import BitstreamError

try:  # optional
    import zstandard as _zstd  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    _zstd = None

SYMBOLS_MAGIC = b"GSES"
BYTES_MAGIC = b"GSEB"
VERSION = 1
_SYM_HEADER = struct.Struct("<4sBBIQII")
_BYTES_HEADER = struct.Struct("<4sBBBQII")

# method ids (stable: they are written into streams)
FIXED, ZLIB, LZMA, ZSTD, ANS = 0, 1, 2, 3, 4
RAW = FIXED  # byte streams: stored as is
METHOD_NAMES = {FIXED: "fixed", ZLIB: "zlib", LZMA: "lzma", ZSTD: "zstd", ANS: "ans"}
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6}]
ZLIB_LEVEL = 6
#: with the default method list, lzma (slow: ~1-3 MB/s) is only tried on inputs up to this
#: size, so encoding a million-Gaussian model stays within seconds; name it to force it
LZMA_MAX_BYTES = 1 << 20


def available_methods() -> list[str]:
    out = ["fixed", "zlib", "lzma", "ans"]
    if _zstd is not None:
        out.insert(3, "zstd")
    return out


# ---------------------------------------------------------------------------- bit packing
def bits_for(alphabet_size: int) -> int:
    """Fixed width of one symbol: ceil(log2 K), at least 1."""
    if alphabet_size < 1:
        raise ValueError(f"alphabet size must be >= 1, got {alphabet_size}")
    return max(1, math.ceil(math.log2(alphabet_size)))


def msb_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Every value as ``bits`` bits, MSB first, concatenated: a flat uint8 array of 0/1."""
    v = np.asarray(values).astype(np.uint64).ravel()
    if not 1 <= bits <= 64:
        raise ValueError(f"bits must be in 1..64, got {bits}")
    if v.size and int(v.max()) >> bits:
        raise ValueError(f"a value does not fit in {bits} bits")
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    return ((v[:, None] >> shifts[None, :]) & np.uint64(1)).astype(np.uint8).ravel()


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Every value written MSB-first with ``bits`` bits, concatenated, the tail padded with
    zeros to a byte (the layout of upstream NSVQ-GS's ``vq_inds.bin``)."""
    return np.packbits(msb_bits(values, bits)).tobytes()


def unpack_bits(data: bytes, n: int, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_bits` (int64 array of ``n`` values)."""
    need = (n * bits + 7) // 8
    if len(data) != need:
        raise ValueError(f"{len(data)} bytes cannot hold exactly {n} values of {bits} bits ({need} bytes)")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if bits > 57:  # a value and its bit offset may not fit one 64-bit window: bit by bit
        mat = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: n * bits].reshape(n, bits).astype(np.uint64)
        weights = (np.uint64(1) << np.arange(bits - 1, -1, -1, dtype=np.uint64))
        return (mat * weights[None, :]).sum(axis=1).astype(np.int64)
    # value i starts at bit i * bits: read the big-endian word at its first byte (a view with
    # a stride of one byte: one gather, no (n, 8) byte matrix), drop the bits before it
    # (shift left) and keep its top ``bits`` bits; a 32-bit word holds up to 25 bits + 7
    buf = np.concatenate([np.frombuffer(data, dtype=np.uint8), np.zeros(8, dtype=np.uint8)])  # any buffer
    dt, ut, width = (">u4", np.uint32, 32) if bits <= 25 else (">u8", np.uint64, 64)
    words_at = np.ndarray((len(data),), dtype=dt, buffer=buf, strides=(1,))
    offset = np.arange(n, dtype=np.int64) * bits
    words = words_at[offset >> 3].astype(ut)
    words <<= (offset & 7).astype(ut)
    words >>= ut(width - bits)
    return words.astype(np.int64)


# ---------------------------------------------------------------------------- generic compressors
def _compress(method: int, data: bytes) -> bytes:
    if method == RAW:
        return data
    if method == ZLIB:
        return zlib.compress(data, ZLIB_LEVEL)
    if method == LZMA:
        return lzma.compress(data, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)
    if method == ZSTD:
        if _zstd is None:
            raise ValueError("zstd needs the 'zstandard' package")
        return _zstd.ZstdCompressor(level=19).compress(data)
    raise ValueError(f"unknown byte method {method}")


def _decompress(method: int, data: bytes, max_len: int) -> bytes:
    if method == RAW:
        return data
    if method == ZLIB:
        d = zlib.decompressobj()
        out = d.decompress(data, max_len + 1)
        return out
    if method == LZMA:
        return lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS).decompress(data, max_len + 1)
    if method == ZSTD:
        if _zstd is None:
            raise BitstreamError("stream is zstd-compressed but the 'zstandard' package is not installed")
        return _zstd.ZstdDecompressor().decompress(data, max_output_size=max_len + 1)
    raise BitstreamError(f"unknown compression method id {method}")


def _shuffle(data: bytes, width: int) -> bytes:
    if width <= 1 or len(data) % width:
        return data
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, width).T.copy().tobytes()


def _unshuffle(data: bytes, width: int) -> bytes:
    if width <= 1 or len(data) % width:
        return data
    return np.frombuffer(data, dtype=np.uint8).reshape(width, -1).T.copy().tobytes()


def _byte_methods(methods: Iterable[str] | None, size: int = 0) -> list[int]:
    names = list(methods) if methods is not None else (
        ["fixed", "zlib", "zstd"] + (["lzma"] if size <= LZMA_MAX_BYTES else []))
    ids = {"fixed": RAW, "raw": RAW, "zlib": ZLIB, "lzma": LZMA, "zstd": ZSTD}
    out = []
    for n in names:
        if n not in ids:
            continue  # e.g. "ans" is for symbols only
        if ids[n] == ZSTD and _zstd is None:
            continue
        out.append(ids[n])
    return out or [RAW]


def compress_bytes(data: bytes | np.ndarray, element_size: int = 1, methods: Iterable[str] | None = None) -> bytes:
    """Measured-best lossless compression of ``data``; ``element_size`` > 1 also tries a byte
    shuffle of that width (e.g. 4 for float32 arrays)."""
    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    raw_crc = zlib.crc32(raw)
    best: tuple[int, int, bytes] | None = None
    shuffles = [1] + ([element_size] if element_size > 1 and len(raw) % element_size == 0 else [])
    for sh in shuffles:
        src = _shuffle(raw, sh)
        for m in _byte_methods(methods, len(raw)):
            if m == RAW and sh != 1:
                continue
            payload = _compress(m, src)
            if best is None or len(payload) < len(best[2]):
                best = (m, sh, payload)
    assert best is not None
    m, sh, payload = best
    header = _BYTES_HEADER.pack(BYTES_MAGIC, VERSION, m, sh, len(raw), zlib.crc32(payload), raw_crc)
    return header + payload


def _read_header(data: bytes, header, magic: bytes, kind: str, name: str) -> tuple:
    """Unpack and check a stream header (length, magic, version): one clear error naming ``name``."""
    if len(data) < header.size:
        raise BitstreamError(f"{name}: truncated ({len(data)} bytes, header needs {header.size})")
    fields = header.unpack_from(data)
    if fields[0] != magic:
        raise BitstreamError(f"{name}: not a GS Bench {kind} stream (bad magic {fields[0]!r})")
    if fields[1] != VERSION:
        raise BitstreamError(f"{name}: {kind} stream version {fields[1]}, this reader knows {VERSION}")
    return fields


def decompress_bytes(data: bytes, name: str = "byte stream") -> bytes:
    """Inverse of :func:`compress_bytes`; ``name`` (e.g. the file and array) goes into errors."""
    data = bytes(data)
    magic, version, method, sh, raw_len, pcrc, rcrc = _read_header(data, _BYTES_HEADER, BYTES_MAGIC, "byte", name)
    payload = data[_BYTES_HEADER.size:]
    if zlib.crc32(payload) != pcrc:
        raise BitstreamError(f"{name}: checksum mismatch (corrupt or truncated payload)")
    try:
        out = _decompress(method, payload, raw_len)
    except BitstreamError:
        raise
    except Exception as exc:
        raise BitstreamError(f"{name}: cannot decompress ({METHOD_NAMES.get(method, method)}: {exc})") from exc
    out = _unshuffle(out, sh)
    if len(out) != raw_len or zlib.crc32(out) != rcrc:
        raise BitstreamError(f"{name}: decompressed data does not match its checksum/length")
    return out


# ---------------------------------------------------------------------------- symbol streams
def _ans_encode(symbols: np.ndarray, alphabet_size: int) -> bytes:
    import constriction

    counts = np.bincount(symbols, minlength=alphabet_size).astype(np.uint32)
    width = 1 if counts.max() < 256 else 2 if counts.max() < 65536 else 4
    table = compress_bytes(counts.astype(f"<u{width}").tobytes(), element_size=width, methods=["zlib", "lzma"])
    model = constriction.stream.model.Categorical(counts.astype(np.float64) / counts.sum(), perfect=False)
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols.astype(np.int32), model)
    words = coder.get_compressed().astype("<u4").tobytes()
    return struct.pack("<BI", width, len(table)) + table + words


def _ans_decode(payload: bytes, n: int, alphabet_size: int, name: str) -> np.ndarray:
    import constriction

    width, tlen = struct.unpack_from("<BI", payload)
    if width not in (1, 2, 4) or 5 + tlen > len(payload):
        raise BitstreamError(f"{name}: bad ANS frequency table header")
    counts = np.frombuffer(decompress_bytes(payload[5:5 + tlen], f"{name} (frequency table)"), dtype=f"<u{width}")
    if counts.size != alphabet_size or counts.sum() != n:
        raise BitstreamError(f"{name}: ANS frequency table does not match {n} symbols over {alphabet_size}")
    words = payload[5 + tlen:]
    if len(words) % 4:
        raise BitstreamError(f"{name}: ANS payload is not a whole number of 32-bit words")
    model = constriction.stream.model.Categorical(counts.astype(np.float64) / counts.sum(), perfect=False)
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(words, dtype="<u4").astype(np.uint32))
    return np.asarray(coder.decode(model, n), dtype=np.int64)


def _symbols_crc(symbols: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(symbols, dtype="<u4").tobytes())


def encode_symbols(symbols: np.ndarray, alphabet_size: int, methods: Iterable[str] | None = None) -> bytes:
    """Code integers in ``[0, alphabet_size)`` with the smallest of ``methods`` (default: all
    available: fixed, zlib, lzma, zstd, ans). ``methods=["fixed"]`` gives the plain fixed-width
    packing plus the header."""
    s = np.asarray(symbols).ravel().astype(np.int64)
    if alphabet_size < 1 or alphabet_size > 2**32 - 1:
        raise ValueError(f"alphabet size {alphabet_size} out of range")
    if s.size and (s.min() < 0 or s.max() >= alphabet_size):
        raise ValueError(f"symbols out of range [0, {alphabet_size})")
    bits = bits_for(alphabet_size)
    packed = pack_bits(s, bits)
    if methods is not None:
        names = list(methods)
    else:
        names = [m for m in available_methods() if m != "lzma" or len(packed) <= LZMA_MAX_BYTES]
    cands: list[tuple[int, bytes]] = []
    for nm in names:
        if nm == "fixed":
            cands.append((FIXED, packed))
        elif nm in ("zlib", "lzma", "zstd"):
            m = {"zlib": ZLIB, "lzma": LZMA, "zstd": ZSTD}[nm]
            if m == ZSTD and _zstd is None:
                continue
            cands.append((m, _compress(m, packed)))
        elif nm == "ans":
            if s.size and alphabet_size > 1:  # constriction needs two or more symbols
                cands.append((ANS, _ans_encode(s, alphabet_size)))
        else:
            raise ValueError(f"unknown symbol coding method '{nm}' (known: {available_methods()})")
    if not cands:
        cands.append((FIXED, packed))
    method, payload = min(cands, key=lambda c: len(c[1]))
    header = _SYM_HEADER.pack(SYMBOLS_MAGIC, VERSION, method, alphabet_size, s.size,
                              zlib.crc32(payload), _symbols_crc(s))
    return header + payload


def symbols_method(data: bytes) -> str:
    """Name of the method a symbol stream was coded with (for statistics)."""
    if len(data) < _SYM_HEADER.size:
        raise BitstreamError("symbol stream: truncated header")
    return METHOD_NAMES.get(_SYM_HEADER.unpack_from(data)[2], "unknown")


def decode_symbols(data: bytes, n: int | None = None, alphabet_size: int | None = None,
                   name: str = "symbol stream") -> np.ndarray:
    """Inverse of :func:`encode_symbols` (int64 array). ``n``/``alphabet_size`` (when given)
    must match the header; ``name`` (file and array) goes into every error message."""
    data = bytes(data)
    magic, version, method, k, count, pcrc, scrc = _read_header(data, _SYM_HEADER, SYMBOLS_MAGIC, "symbol", name)
    if n is not None and count != n:
        raise BitstreamError(f"{name}: holds {count} symbols, expected {n}")
    if alphabet_size is not None and k != alphabet_size:
        raise BitstreamError(f"{name}: alphabet size {k}, expected {alphabet_size}")
    payload = data[_SYM_HEADER.size:]
    if zlib.crc32(payload) != pcrc:
        raise BitstreamError(f"{name}: checksum mismatch (corrupt or truncated payload)")
    bits = bits_for(k)
    try:
        if method == FIXED:
            out = unpack_bits(payload, count, bits)
        elif method in (ZLIB, LZMA, ZSTD):
            need = (count * bits + 7) // 8
            out = unpack_bits(_decompress(method, payload, need)[: need + 1], count, bits)
        elif method == ANS:
            out = _ans_decode(payload, count, k, name) if count else np.zeros(0, np.int64)
        else:
            raise BitstreamError(f"{name}: unknown coding method id {method}")
    except BitstreamError:
        raise
    except Exception as exc:
        raise BitstreamError(f"{name}: cannot decode ({METHOD_NAMES.get(method, method)}: {exc})") from exc
    if out.size != count or (count and (out.min() < 0 or out.max() >= k)) or _symbols_crc(out) != scrc:
        raise BitstreamError(f"{name}: decoded symbols do not match their checksum")
    return out


__all__ = ["available_methods", "bits_for", "msb_bits", "pack_bits", "unpack_bits", "compress_bytes", "decompress_bytes",
           "encode_symbols", "decode_symbols", "symbols_method"]
