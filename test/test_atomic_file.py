"""Model, engine and checkpoint files appear whole or not at all."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest

from depth_unet_ros.atomic_file import atomic_output, atomic_write


def test_atomic_write_creates_a_world_readable_file(tmp_path: Path) -> None:
    """Exports are shared and packaged: 0644, not mkstemp's private 0600."""
    path = atomic_write(tmp_path / "sub" / "model.onnx", b"abc")
    assert path.read_bytes() == b"abc"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    """An exception mid-write leaves the previous content and no stray .tmp beside it."""
    path = tmp_path / "last.pt"
    path.write_bytes(b"good")
    with pytest.raises(RuntimeError):
        with atomic_output(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
