"""Files that appear whole or not at all: checkpoints, ONNX exports, TensorRT engines, reports.

A crash, a full disk or Ctrl-C mid-write must never leave a half file where a reader (the node,
``--resume``, the engine cache) would take it for a good one.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed over ``path``.

    On any exception the temporary file is removed and ``path`` keeps its old content. The file
    gets 0644, not mkstemp's private 0600, because models and engines are shared with other users
    and installed into packages (reading the umask would briefly change it for every thread).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see ``atomic_output``)."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (the directory entry); not possible on every OS."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
