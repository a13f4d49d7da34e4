"""Atomic file writing: a temporary file beside the target, then a rename.

A reader (or a process killed half-way) never sees a partially written file: either the old
content or the complete new one is at the target path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from topo.errors import OutputError, TopoError

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_bytes"]


def _read_umask() -> int:
    # Read once at import: changing the umask to look at it is not thread-safe.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The temporary name starts with ``.`` and ends with ``.tmp`` so that listings of snapshot
    files never pick it up. On error the temporary file is removed and ``path`` is untouched;
    an ``OSError`` (missing permission, a folder in the way, a full disk) becomes
    :class:`~topo.errors.OutputError` naming ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: cannot write a file here, it is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates the file private (0600), and some writers replace the file we
        # made: give the result the permissions of a normally created file.
        os.chmod(tmp, 0o666 & ~_UMASK)
        _fsync_file(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, TopoError):
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
