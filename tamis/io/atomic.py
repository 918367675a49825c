"""Atomic, checksummed file writes for local and remote (gs://) paths.

A file appears under its final name only once complete: local writes go to a
temporary name in the same folder, are fsynced, then renamed; remote writes go
through Beam FileSystems to a temporary object that is renamed when closed.
"""

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from typing import IO

CHUNK = 1 << 20


def is_remote(path: str) -> bool:
    return "://" in path


def join(root: str, *parts: str) -> str:
    if is_remote(root):
        return "/".join([root.rstrip("/"), *parts])
    return os.path.join(root, *parts)


def exists(path: str) -> bool:
    if is_remote(path):
        from apache_beam.io.filesystems import FileSystems

        return FileSystems.exists(path)
    return os.path.exists(path)


def makedirs(path: str) -> None:
    if not is_remote(path):  # object stores have no folders
        os.makedirs(path, exist_ok=True)


def _fsync_dir(path: str) -> None:
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str) -> Iterator[IO[bytes]]:
    """Open `path` for binary writing; it exists under that name only if the block succeeds."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    if is_remote(path):
        from apache_beam.io.filesystems import FileSystems

        f = FileSystems.create(tmp)
        try:
            yield f
            f.close()
            FileSystems.rename([tmp], [path])
        except BaseException:
            with contextlib.suppress(Exception):
                f.close()
                FileSystems.delete([tmp])
            raise
        return
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    f = open(tmp, "wb")
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException:
        f.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_bytes(path: str, data: bytes) -> None:
    with atomic_write(path) as f:
        f.write(data)


def open_read(path: str) -> IO[bytes]:
    if is_remote(path):
        from apache_beam.io.filesystems import FileSystems

        return FileSystems.open(path, compression_type="uncompressed")
    return open(path, "rb")


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open_read(path) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def size(path: str) -> int:
    if is_remote(path):
        from apache_beam.io.filesystems import FileSystems

        return FileSystems.metadata(path).size_in_bytes
    return os.path.getsize(path)
