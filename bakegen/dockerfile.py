"""Just enough Dockerfile parsing to check a spec against it: stage names and ARGs."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

_DIRECTIVE = re.compile(r"^\s*#\s*escape\s*=\s*(\S)", re.IGNORECASE)


@dataclass(frozen=True)
class DockerfileInfo:
    stages: tuple[str, ...]
    args: frozenset[str]


def parse_dockerfile(path: Path) -> DockerfileInfo:
    text = path.read_text(encoding="utf-8", errors="replace")
    stages: list[str] = []
    args: set[str] = set()
    for instruction in _instructions(text):
        keyword, _, rest = instruction.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.append(words[2].lower())
        elif keyword == "ARG":
            try:
                words = shlex.split(rest)
            except ValueError:
                words = rest.split()
            args.update(w.split("=", 1)[0] for w in words)
    return DockerfileInfo(tuple(stages), frozenset(args))


def _instructions(text: str) -> list[str]:
    """Logical lines: comments dropped, backslash (or the escape directive's) continuations joined."""
    escape = "\\"
    lines = text.splitlines()
    for line in lines[:5]:
        match = _DIRECTIVE.match(line)
        if match:
            escape = match.group(1)
    out: list[str] = []
    current = ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        if stripped.endswith(escape):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            out.append(current.strip())
        current = ""
    if current.strip():
        out.append(current.strip())
    return out
