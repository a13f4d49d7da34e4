"""Bounds on what reading a file may allocate: decompression, zip members, declared sizes.

A file may declare a tensor of a terabyte in a few bytes (a safetensors or ``.npy`` header)
or expand a few kilobytes into gigabytes (a gzip or zip bomb). Readers check every declared
size against what the file can hold and read compressed data in bounded chunks, so a hostile
or damaged file ends in a one-line error, never in a giant allocation.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from topo.errors import UnreadableFileError

__all__ = ["MAX_DECOMPRESSED_BYTES", "ZIP_ERRORS", "gunzip_bounded", "read_zip_member",
           "read_file_bounded", "human_bytes"]

MAX_DECOMPRESSED_BYTES = 2 * 1024**3
"""Largest decompressed payload topo reads from one compressed file or zip member (2 GiB;
the largest protobuf an ONNX model can be)."""

_CHUNK = 1 << 20

ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
              UnicodeDecodeError, NotImplementedError, KeyError, zlib.error)
"""What opening or reading a damaged zip archive can raise."""


def human_bytes(n: int) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.3g} {unit}"
        size /= 1024
    return f"{n} bytes"  # pragma: no cover


def gunzip_bounded(path: Path, what: str = "gzip") -> bytes:
    """The decompressed content of the gzip file ``path``, refused beyond the size limit.

    Raises
    ------
    UnreadableFileError
        Truncated or corrupt gzip data, or content larger than ``MAX_DECOMPRESSED_BYTES``.
    """
    limit = MAX_DECOMPRESSED_BYTES
    out = bytearray()
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        with open(path, "rb") as fh:
            while True:
                chunk = d.unconsumed_tail or fh.read(_CHUNK)
                if not chunk:
                    break
                out += d.decompress(chunk, limit + 1 - len(out))
                if len(out) > limit:
                    raise UnreadableFileError(
                        f"{path}: {what} expands beyond {human_bytes(limit)} (a gzip bomb or "
                        "not a network file); not read")
                if d.eof:
                    rest = d.unused_data + fh.read(_CHUNK)
                    if not rest.strip(b"\0"):
                        break
                    # another gzip member follows (concatenated gzip files are one stream)
                    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    out += d.decompress(rest, limit + 1 - len(out))
                    if len(out) > limit:
                        raise UnreadableFileError(
                            f"{path}: {what} expands beyond {human_bytes(limit)}; not read")
    except zlib.error as exc:
        raise UnreadableFileError(f"{path}: damaged {what} data ({exc})") from None
    if not d.eof:
        raise UnreadableFileError(f"{path}: truncated {what} data (the stream ends early)")
    return bytes(out)


def read_zip_member(zf: zipfile.ZipFile, name: str, path: Path, what: str) -> bytes:
    """Read one member of a zip archive, refused when it declares or expands beyond the limit.

    Raises
    ------
    UnreadableFileError
        A member too large, or damaged or truncated compressed data.
    """
    limit = MAX_DECOMPRESSED_BYTES
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise UnreadableFileError(
            f"{path}: {what}: member {name!r} declares {human_bytes(info.file_size)}, more "
            f"than topo reads from one member ({human_bytes(limit)})")
    try:
        with zf.open(info) as fh:
            data = fh.read(min(info.file_size, limit) + 1)
    except ZIP_ERRORS as exc:
        raise UnreadableFileError(
            f"{path}: {what}: damaged member {name!r} ({_first_line(exc)})") from None
    if len(data) != info.file_size:
        raise UnreadableFileError(
            f"{path}: {what}: member {name!r} holds {len(data)} bytes, its header says "
            f"{info.file_size}")
    return data


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def read_file_bounded(path: Path, what: str) -> bytes:
    """The bytes of ``path``, refused when larger than ``MAX_DECOMPRESSED_BYTES``."""
    size = path.stat().st_size
    if size > MAX_DECOMPRESSED_BYTES:
        raise UnreadableFileError(
            f"{path}: {what} of {human_bytes(size)}, more than topo reads "
            f"({human_bytes(MAX_DECOMPRESSED_BYTES)})")
    return path.read_bytes()
