"""numpy and Arrow files of the index formats: written atomically, read back (memory-mapped when local).

Every index kind (BM25, dense, code) stores its arrays as `.npy` (never with
pickle) and its tables as Arrow IPC files through these four functions, so a
file that cannot be read is one IntegrityError with its path, whatever wrote it.
"""

import io

import numpy as np
import pyarrow as pa

from tamis.errors import IntegrityError
from tamis.io import atomic


def write_npy(path: str, array: np.ndarray) -> None:
    with atomic.atomic_write(path) as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)


def write_arrow(path: str, table: pa.Table) -> None:
    with atomic.atomic_write(path) as f, pa.ipc.new_file(f, table.schema) as writer:
        writer.write_table(table)


def _bytes(path: str) -> bytes:
    with atomic.open_read(path) as f:
        return f.read()


def read_npy(path: str, mmap: bool = False) -> np.ndarray:
    try:
        if atomic.is_remote(path):
            return np.load(io.BytesIO(_bytes(path)), allow_pickle=False)
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise IntegrityError(f"{path} is not a readable .npy array ({e})", hint="rebuild the index") from e


def read_arrow(path: str, mmap: bool = False) -> pa.Table:
    try:
        if atomic.is_remote(path):
            return pa.ipc.open_file(pa.py_buffer(_bytes(path))).read_all()
        return pa.ipc.open_file(pa.memory_map(path) if mmap else pa.OSFile(path)).read_all()
    except (pa.ArrowInvalid, OSError) as e:
        raise IntegrityError(f"{path} is not a readable Arrow file ({e})", hint="rebuild the index") from e
