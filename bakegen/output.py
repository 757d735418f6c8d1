"""Writing generated files: atomically, and `--check` for staleness.

Every failure to write is one line, `bakegen: PATH: reason` (exit 2), never a traceback; paths
are shown with undecodable bytes and control characters escaped, so a file name cannot forge
output lines or break out of a generated file's header comment (`errors.printable`).
"""

from __future__ import annotations

import difflib
import os
import stat
import sys
import tempfile
from pathlib import Path

from bakegen.errors import EXIT_FAILED, EXIT_OK, BakegenError, printable


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file.
    A symlink is written through (its target is replaced, the link stays); anything but a
    regular file (a device, a FIFO, a directory) is refused rather than replaced."""
    shown = printable(str(path))
    target = _write_target(path)
    try:
        mode = target.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):  # not there yet, or a file in the way (said below)
        mode = None
    except OSError as exc:
        raise BakegenError(f"{shown}: cannot write: {exc.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise BakegenError(f"{shown}: is a directory; give a file path with -o")
    if mode is not None and not stat.S_ISREG(mode):
        raise BakegenError(f"{shown}: not a regular file; bakegen only replaces regular files")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise BakegenError(f"{shown}: cannot write: {_directory_problem(target.parent, exc)}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, stat.S_IMODE(mode) if mode is not None else 0o644)
        os.replace(tmp, target)
    except (OSError, UnicodeEncodeError) as exc:
        # UnicodeEncodeError: text with a lone surrogate (a non-UTF-8 file name that reached it unescaped).
        Path(tmp).unlink(missing_ok=True)
        reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else f"the text is not valid Unicode ({exc.reason})"
        raise BakegenError(f"{shown}: cannot write: {reason}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_target(path: Path) -> Path:
    """Where writing `path` lands: a symlink's final target (created if the link dangles)."""
    if not path.is_symlink():
        return path
    try:
        return path.resolve(strict=True)
    except FileNotFoundError:
        return Path(os.path.realpath(path))
    except (OSError, RuntimeError):  # a loop: RuntimeError before Python 3.13, OSError (ELOOP) after
        raise BakegenError(f"{printable(str(path))}: cannot write: a symlink loop") from None


def _directory_problem(directory: Path, exc: OSError) -> str:
    # mkdir over a file says "File exists"; name the file that is in the way instead.
    for ancestor in (directory, *directory.parents):
        if ancestor.exists() or ancestor.is_symlink():
            if not ancestor.is_dir():
                return f"{printable(str(ancestor))} is not a directory"
            break
    return f"cannot create a file in {printable(str(directory))}: {exc.strerror or exc}"


def stale_diff(path: Path, text: str) -> str | None:
    """A unified diff from the file on disk to `text`, or None when they are the same."""
    shown = printable(str(path))
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or /dev/zero would never finish reading
            raise BakegenError(f"{shown}: not a regular file; --check compares with a regular file")
        current = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = ""
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise BakegenError(f"{shown}: cannot read for --check: {reason}") from None
    if current == text:
        return None
    diff = difflib.unified_diff(
        current.splitlines(keepends=True), text.splitlines(keepends=True), f"{shown} (on disk)", f"{shown} (generated)"
    )
    return "".join(diff) or f"{shown} is missing\n"


def emit(text: str, output: str, *, check: bool, regenerate: str, exit_code: bool = False) -> int:
    """Print to stdout (`-`), write atomically, or with `check` report staleness (exit 1).
    With `exit_code` (pre-commit's fix-and-fail) a file that changed is written and the exit is 1."""
    if output == "-":
        if check:
            raise BakegenError("--check needs a file to compare with (-o PATH), not stdout")
        sys.stdout.write(text)
        return EXIT_OK
    path = Path(output)
    shown = printable(output)
    if check and not path.exists():
        print(f"{shown}: missing; regenerate with: {printable(regenerate)}", file=sys.stderr)
        return EXIT_FAILED
    if exit_code and stale_diff(path, text) is None:
        print(f"{shown} is up to date", file=sys.stderr)
        return EXIT_OK
    if check:
        diff = stale_diff(path, text)
        if diff is None:
            print(f"{shown} is up to date")
            return EXIT_OK
        sys.stdout.write(diff)
        print(f"{shown} is stale; regenerate with: {printable(regenerate)}", file=sys.stderr)
        return EXIT_FAILED
    write_atomic(path, text)
    print(f"wrote {shown}", file=sys.stderr)
    return EXIT_FAILED if exit_code else EXIT_OK
