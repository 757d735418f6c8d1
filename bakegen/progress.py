"""How a run shows itself while it runs: which progress mode, whether to colour, the live view, -k matching.

The choices follow buildx, compose and pytest: `--progress auto` is a live view on a terminal and a plain log
in CI or through a pipe; colour only on a terminal, NO_COLOR turns it off and FORCE_COLOR on (https://no-color.org,
https://force-color.org); one closing line with counts and time. `rich` draws the live view: it is well kept, pure
Python, and handles terminal size, redraws and cursor state (it is imported only when a live view is shown).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any, Literal

ProgressMode = Literal["auto", "tty", "plain", "quiet", "rawjson"]
PROGRESS_MODES: tuple[ProgressMode, ...] = ("auto", "tty", "plain", "quiet", "rawjson")
ResolvedMode = Literal["tty", "plain", "quiet", "rawjson"]


@dataclass(frozen=True)
class Terminal:
    """What decides the look of the output: where it goes and what the environment asks for."""

    is_tty: bool
    ci: bool = False
    dumb: bool = False  # TERM=dumb: no cursor movement
    no_color: bool = False
    force_color: bool = False

    @classmethod
    def of(cls, stream: IO[str], environ: Mapping[str, str]) -> Terminal:
        try:
            is_tty = stream.isatty()
        except (AttributeError, ValueError):  # closed or replaced streams
            is_tty = False
        return cls(
            is_tty=is_tty,
            ci=bool(environ.get("CI")) and environ.get("CI", "").lower() not in ("0", "false"),
            dumb=environ.get("TERM") == "dumb",
            no_color=bool(environ.get("NO_COLOR")),
            force_color=bool(environ.get("FORCE_COLOR")) and environ.get("FORCE_COLOR") != "0",
        )


def resolve_mode(requested: ProgressMode, terminal: Terminal) -> ResolvedMode:
    """`auto` is the live view on an interactive terminal, the plain log in CI, through a pipe or on TERM=dumb."""
    if requested != "auto":
        return requested
    return "tty" if terminal.is_tty and not terminal.ci and not terminal.dumb else "plain"


def use_color(terminal: Terminal) -> bool:
    """NO_COLOR wins over FORCE_COLOR (it is the user's own setting); otherwise colour only on a terminal."""
    if terminal.no_color:
        return False
    if terminal.force_color:
        return True
    return terminal.is_tty and not terminal.dumb


_STYLES = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}


def paint(text: str, style: str, color: bool) -> str:
    """`text` in an ANSI style when colour is on; as it is otherwise."""
    return f"\x1b[{_STYLES[style]}m{text}\x1b[0m" if color and text else text


def closing_line(counts: Sequence[tuple[str, int]], seconds: float) -> str:
    """`12 built, 1 failed in 42.1 s`: every count given, in order, then the wall time."""
    return ", ".join(f"{count} {word}" for word, count in counts) + f" in {seconds:.1f} s"


# -- -k --


class KeywordError(ValueError):
    """A -k expression that cannot be parsed."""


def keyword_matches(expression: str, name: str) -> bool:
    """pytest's -k, kept simple: words match as case-insensitive substrings of `name` (TARGET::CHECK),
    combined with `not`, `and`, `or` and parentheses. `server` picks every check of the server targets,
    `::health` every health check, `light and not cuda` the light targets' checks except the CUDA ones."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expression)
    if not tokens:
        raise KeywordError("-k: empty expression")
    position, value = _or(tokens, 0, name.lower())
    if position != len(tokens):
        raise KeywordError(f"-k {expression!r}: unexpected {tokens[position]!r}")
    return value


def _or(tokens: list[str], i: int, name: str) -> tuple[int, bool]:
    i, value = _and(tokens, i, name)
    while i < len(tokens) and tokens[i] == "or":
        i, right = _and(tokens, i + 1, name)
        value = value or right
    return i, value


def _and(tokens: list[str], i: int, name: str) -> tuple[int, bool]:
    i, value = _not(tokens, i, name)
    while i < len(tokens) and tokens[i] == "and":
        i, right = _not(tokens, i + 1, name)
        value = value and right
    return i, value


def _not(tokens: list[str], i: int, name: str) -> tuple[int, bool]:
    if i >= len(tokens):
        raise KeywordError("-k: the expression ends too early")
    if tokens[i] == "not":
        i, value = _not(tokens, i + 1, name)
        return i, not value
    if tokens[i] == "(":
        i, value = _or(tokens, i + 1, name)
        if i >= len(tokens) or tokens[i] != ")":
            raise KeywordError("-k: missing ')'")
        return i + 1, value
    if tokens[i] in ("and", "or", ")"):
        raise KeywordError(f"-k: unexpected {tokens[i]!r}")
    return i + 1, tokens[i].lower() in name


# -- views of one build --

# `#12 [server-cuda build 3/4] RUN ...` (bake's plain log): the target, then the step. With one target
# buildx leaves its name out: `#6 [2/2] RUN ...`.
_STEP = re.compile(r"^#(\d+) \[([^\]]*)\] (.*)")
_VERTEX_STATE = re.compile(r"^#(\d+) (DONE|CACHED|ERROR)")


@dataclass
class TargetState:
    name: str
    state: str = "waiting"
    step: str = ""
    started: float = 0.0
    ended: float = 0.0

    def elapsed(self, now: float) -> float:
        return ((self.ended or now) - self.started) if self.started else 0.0


class BuildView:
    """Where buildx's plain log goes: `line` takes each line, `finish` says how each target ended."""

    def __enter__(self) -> BuildView:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        return None

    def line(self, text: str) -> None:
        """One line of buildx's log."""

    def finish(self, failed: Sequence[str]) -> None:
        """The build is over; `failed` names the targets that failed."""


@dataclass
class PlainView(BuildView):
    """The log as buildx wrote it (plain, or rawjson), on stderr."""

    stream: IO[str] = field(default_factory=lambda: sys.stderr)

    def line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class LiveView(BuildView):
    """One row per target, redrawn in place: state, current step, elapsed time (like compose and buildx tty)."""

    def __init__(self, targets: Sequence[str], label: str, color: bool, stream: IO[str] | None = None) -> None:
        self.targets = {name: TargetState(name) for name in targets}
        self.label = label
        self.color = color
        self.stream = stream or sys.stderr
        self.vertex_target: dict[str, str] = {}
        self.live: Any = None

    def __enter__(self) -> LiveView:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self.stream, force_terminal=True, no_color=not self.color, highlight=False)
        self.live = Live(self._table(), console=console, refresh_per_second=8, transient=False, get_renderable=self._table)
        self.live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self.live is not None:
            self.live.__exit__(kind, error, trace)
            self.live = None

    def line(self, text: str) -> None:
        now = time.monotonic()
        step = _STEP.match(text)
        if step:
            vertex, bracket, what = step.groups()
            first, _, rest = bracket.partition(" ")
            if first in self.targets:
                name, where = first, rest
            elif len(self.targets) == 1 and first != "internal":
                name, where = next(iter(self.targets)), bracket
            else:
                return
            self.vertex_target[vertex] = name
            target = self.targets[name]
            target.state, target.step = "building", f"[{where}] {what}" if where else what
            target.started = target.started or now
            return
        state = _VERTEX_STATE.match(text)
        if state and state.group(2) == "ERROR" and state.group(1) in self.vertex_target:
            self.targets[self.vertex_target[state.group(1)]].state = "failing"

    def finish(self, failed: Sequence[str]) -> None:
        now = time.monotonic()
        for target in self.targets.values():
            target.state = "failed" if target.name in failed else "done"
            target.step = "" if target.state == "done" else target.step
            target.started = target.started or now
            target.ended = now
        if self.live is not None:
            self.live.refresh()

    def _table(self) -> Any:
        from rich.table import Table

        styles = {"done": "green", "failed": "red", "failing": "red", "building": "yellow", "waiting": "dim"}
        now = time.monotonic()
        table = Table.grid(padding=(0, 2))
        table.add_row(f"[bold]build {self.label}[/bold]", "", "", "")
        for target in self.targets.values():
            table.add_row(
                f"  {target.name}",
                f"[{styles[target.state]}]{target.state}[/]",
                f"{target.elapsed(now):5.1f}s",
                _shorten(target.step, 80),
            )
        return table


def _shorten(text: str, width: int) -> str:
    from rich.markup import escape

    return escape(text if len(text) <= width else text[: width - 1] + "…")


def build_view(mode: ResolvedMode, targets: Sequence[str], label: str, color: bool) -> BuildView:
    """The view of one `docker buildx bake` run in the given progress mode."""
    if mode == "tty":
        return LiveView(targets, label, color)
    if mode == "quiet":
        return BuildView()
    return PlainView()
