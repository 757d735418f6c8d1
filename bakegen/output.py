"""Writing generated files: atomically, and `--check` for staleness."""

from __future__ import annotations

import difflib
import os
import sys
import tempfile
from pathlib import Path

from bakegen.errors import EXIT_FAILED, EXIT_OK, BakegenError


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stale_diff(path: Path, text: str) -> str | None:
    """A unified diff from the file on disk to `text`, or None when they are the same."""
    try:
        current = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise BakegenError(f"{path}: cannot read for --check: {exc}") from None
    if current == text:
        return None
    diff = difflib.unified_diff(
        current.splitlines(keepends=True), text.splitlines(keepends=True), f"{path} (on disk)", f"{path} (generated)"
    )
    return "".join(diff) or f"{path} is missing\n"


def emit(text: str, output: str, *, check: bool, regenerate: str, exit_code: bool = False) -> int:
    """Print to stdout (`-`), write atomically, or with `check` report staleness (exit 1).
    With `exit_code` (pre-commit's fix-and-fail) a file that changed is written and the exit is 1."""
    if output == "-":
        if check:
            raise BakegenError("--check needs a file to compare with (-o PATH), not stdout")
        sys.stdout.write(text)
        return EXIT_OK
    path = Path(output)
    if check and not path.exists():
        print(f"{path}: missing; regenerate with: {regenerate}", file=sys.stderr)
        return EXIT_FAILED
    if exit_code and stale_diff(path, text) is None:
        print(f"{path} is up to date", file=sys.stderr)
        return EXIT_OK
    if check:
        diff = stale_diff(path, text)
        if diff is None:
            print(f"{path} is up to date")
            return EXIT_OK
        sys.stdout.write(diff)
        print(f"{path} is stale; regenerate with: {regenerate}", file=sys.stderr)
        return EXIT_FAILED
    if path.is_dir():
        raise BakegenError(f"{path}: is a directory; give a file path with -o")
    write_atomic(path, text)
    print(f"wrote {path}", file=sys.stderr)
    return EXIT_FAILED if exit_code else EXIT_OK
