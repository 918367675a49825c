"""Checksums of shard files, computed on a background thread in the order the epoch will open them.

A dataset verifies a file before it yields anything read from it. Hashing the
next files while the current one is being read (hashlib and the Parquet decoder
both release the GIL) keeps verification mostly off the critical path.

A file is hashed once per process: a pass is remembered by the file's identity
(path, device, inode, size, modification time), so the next epoch, or a dataset
rebuilt in the same process, does not hash it again unless the file was replaced
or rewritten. Forked DataLoader workers inherit what their parent verified; with
non-persistent workers, what a worker verifies ends with it, so use
`persistent_workers=True` to hash each file once per worker for the whole run.
"""

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tamis.errors import IntegrityError
from tamis.io import atomic

_VERIFIED: set[tuple] = set()  # identities of files whose sha256 matched, in this process


def _identity(path: str, sha256: str) -> tuple:
    st = os.stat(path)
    return (os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, sha256)


def _check(path: str, sha256: str) -> None:
    key = _identity(path, sha256)
    if key in _VERIFIED:
        return
    if atomic.sha256_file(path) != sha256:
        raise IntegrityError(f"{path} does not match its manifest checksum: the file is corrupt or was changed",
                             hint="rebuild it, or pass verify=False to skip checksums")
    _VERIFIED.add(key)


def forget_verified() -> None:
    """Make this process hash every file again (benchmarks time a first epoch with it)."""
    _VERIFIED.clear()


class BackgroundChecks:
    """sha256 checks of (key → path, sha256) files: `plan` queues them, `wait` blocks until one has passed."""

    def __init__(self) -> None:
        self._pid = -1
        self._executor: ThreadPoolExecutor | None = None
        self._futures: dict[Any, Future] = {}

    def _here(self) -> None:
        if self._pid != os.getpid():  # a copy in a new process: threads and results do not carry over
            self._pid, self._executor, self._futures = os.getpid(), ThreadPoolExecutor(1), {}

    def plan(self, files: list[tuple[Any, str, str]]) -> None:
        """Queue checks of (key, path, sha256) in this order, skipping those already queued."""
        self._here()
        for key, path, sha256 in files:
            if key not in self._futures:
                self._futures[key] = self._executor.submit(_check, path, sha256)

    def wait(self, key: Any, path: str, sha256: str) -> None:
        self.plan([(key, path, sha256)])
        self._futures[key].result()

    def __getstate__(self) -> dict[str, Any]:
        return {"_pid": -1, "_executor": None, "_futures": {}}
