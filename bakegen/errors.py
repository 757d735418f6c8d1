"""Diagnostics: every problem with user input becomes one line, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]

# Exit codes shared by every command.
EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and found something wrong (stale file, failed build or check)
EXIT_USAGE = 2  # bad input: spec, flags, files


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem, located in a file as `FILE:LINE:COL: json.path: message`."""

    file: str
    line: int
    column: int
    path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        prefix = "warning: " if self.severity == "warning" else ""
        subject = f"{self.path}: " if self.path else ""
        return f"{where}: {prefix}{subject}{self.message}"


class BakegenError(Exception):
    """Bad input. Carries diagnostics; the CLI prints them and exits 2."""

    def __init__(self, diagnostics: list[Diagnostic] | str) -> None:
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic("bakegen", 0, 0, "", diagnostics)]
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


class EngineError(Exception):
    """A fault outside the input: no engine answers, the registry is down, a docker call failed.

    The runners turn every python-on-whales, docker-py and testcontainers exception into this
    one type; the CLI prints it as one line and exits 1.
    """

    def __init__(self, message: str) -> None:
        self.message = " ".join(message.split()) or "docker failed"
        super().__init__(self.message)


def printable(text: str) -> str:
    """`text` safe on one line of a terminal or inside a one-line comment: the bytes of a file name
    that is not UTF-8 (surrogate escapes) as \\xNN, control, format and line-separator characters
    as \\n, \\x1b, \\u2028. Printable text, non-ASCII letters included, stays as it is."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if 0xDC80 <= ord(ch) <= 0xDCFF:  # os.fsdecode's surrogateescape of a byte >= 0x80
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)
