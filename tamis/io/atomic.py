"""Atomic, checksummed file writes and reads for local and remote (gs://, s3://) paths.

A file appears under its final name only once complete: local writes go to a
temporary name in the same folder, are fsynced, then renamed; remote writes go
to a temporary object that is renamed (moved) when closed. Remote paths go
through `pyarrow.fs`, not Beam, so the parts that only read artifacts (the
training loader, the service) need no Beam.
"""

import contextlib
import fnmatch
import glob as _glob
import hashlib
import os
import uuid
from collections.abc import Iterator
from functools import lru_cache
from typing import IO

CHUNK = 1 << 20
_GLOB_CHARS = "*?["


def is_remote(path: str) -> bool:
    return "://" in path


def join(root: str, *parts: str) -> str:
    if is_remote(root):
        return "/".join([root.rstrip("/"), *parts])
    return os.path.join(root, *parts)


@lru_cache(maxsize=16)
def _filesystem(scheme_and_bucket: str):
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(scheme_and_bucket)[0]


def _remote(path: str):
    """(pyarrow filesystem, path inside it) of a remote URI; one filesystem object per bucket."""
    scheme, rest = path.split("://", 1)
    return _filesystem(f"{scheme}://{rest.split('/', 1)[0]}"), rest


def exists(path: str) -> bool:
    if is_remote(path):
        import pyarrow.fs

        fs, inner = _remote(path)
        return fs.get_file_info(inner).type != pyarrow.fs.FileType.NotFound
    return os.path.exists(path)


def glob(pattern: str) -> list[str]:
    """The sorted files (not folders) a path or glob names; a relative local pattern matches from the working directory."""
    if is_remote(pattern):
        return _remote_glob(pattern)
    if not any(c in pattern for c in _GLOB_CHARS):
        return [pattern] if os.path.isfile(pattern) else []
    return sorted(p for p in _glob.glob(pattern, recursive=True) if os.path.isfile(p))


def _remote_glob(pattern: str) -> list[str]:
    import pyarrow.fs

    fs, inner = _remote(pattern)
    scheme = pattern.split("://", 1)[0]
    if not any(c in inner for c in _GLOB_CHARS):
        info = fs.get_file_info(inner)
        return [pattern] if info.type == pyarrow.fs.FileType.File else []
    base = inner[: min(inner.find(c) for c in _GLOB_CHARS if c in inner)].rsplit("/", 1)[0]
    infos = fs.get_file_info(pyarrow.fs.FileSelector(base, recursive=True, allow_not_found=True))
    return sorted(
        f"{scheme}://{i.path}" for i in infos if i.type == pyarrow.fs.FileType.File and fnmatch.fnmatchcase(i.path, inner)
    )


def check_writable_dir(path: str) -> None:
    """Refuse (ConfigError) a local output that is a file, or that this process could not create or write."""
    from tamis.errors import ConfigError

    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"The output {path} exists and is not a folder.", hint="choose a folder for the output")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"The output {path} cannot be written: {existing} is not a writable folder.",
                          hint="choose an output folder you can write to")


def makedirs(path: str) -> None:
    if not is_remote(path):  # object stores have no folders
        os.makedirs(path, exist_ok=True)


def _fsync_dir(path: str) -> None:
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temporaries(root: str, depth: int = 3) -> None:
    """Delete the temporary files (NAME.tmp-XXXX) that writes cut short by a kill left under `root`, down to
    `depth` folder levels: a resumed build then holds only what it finishes."""
    for level in range(depth + 1):
        for path in glob(join(root, *["*"] * level, "*.tmp-*")):
            delete(path)


@contextlib.contextmanager
def atomic_write(path: str) -> Iterator[IO[bytes]]:
    """Open `path` for binary writing; it exists under that name only if the block succeeds."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    if is_remote(path):
        fs, inner = _remote(tmp)
        final = _remote(path)[1]
        f = fs.open_output_stream(inner)
        try:
            yield f
            f.close()
            fs.move(inner, final)
        except BaseException:
            with contextlib.suppress(Exception):
                f.close()
                fs.delete_file(inner)
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
        fs, inner = _remote(path)
        return fs.open_input_file(inner)
    return open(path, "rb")


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open_read(path) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def size(path: str) -> int:
    if is_remote(path):
        fs, inner = _remote(path)
        return fs.get_file_info(inner).size
    return os.path.getsize(path)


def delete(path: str) -> None:
    """Delete one file; a file already gone is fine."""
    if is_remote(path):
        fs, inner = _remote(path)
        with contextlib.suppress(FileNotFoundError):
            fs.delete_file(inner)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def remove_tree(path: str) -> None:
    """Delete a folder (or a remote prefix) and everything under it."""
    if is_remote(path):
        fs, inner = _remote(path)
        fs.delete_dir(inner.rstrip("/"))
    else:
        import shutil

        shutil.rmtree(path)
