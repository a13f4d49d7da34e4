"""Atomic writes (topo.io.atomic): a failed write leaves the old file and no temporary one."""

from __future__ import annotations

import pytest

from topo.errors import OutputError
from topo.io.atomic import atomic_path, atomic_write_text


def test_a_write_that_fails_half_way_keeps_the_old_file_and_cleans_up(tmp_path):
    target = atomic_write_text(tmp_path / "table.csv", "old\n")
    with pytest.raises(OutputError, match=r"table.csv: cannot write \(No space left"), \
            atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise OSError(28, "No space left on device")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_an_error_of_the_writer_itself_passes_through_unchanged(tmp_path):
    target = atomic_write_text(tmp_path / "t.txt", "old")
    with pytest.raises(KeyError), atomic_path(target) as tmp:
        tmp.write_text("new")
        raise KeyError("a bug in the writer")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.txt"]


def test_the_rename_failing_is_an_output_error(tmp_path, monkeypatch):
    import topo.io.atomic as atomic

    def no_rename(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic.os, "replace", no_rename)
    with pytest.raises(OutputError, match="Permission denied"):
        atomic_write_text(tmp_path / "t.txt", "new")
    assert list(tmp_path.iterdir()) == []
