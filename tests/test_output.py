"""output.py: atomic writes and --check."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakegen.output import stale_diff, write_atomic


def test_write_atomic_keeps_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "docker-bake.hcl"
    target.write_text("old\n")

    def boom(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("bakegen.output.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["docker-bake.hcl"]


def test_stale_diff(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("a\n")
    assert stale_diff(target, "a\n") is None
    assert "+b" in (stale_diff(target, "b\n") or "")
