"""Output decisions without an engine: progress mode, colour, closing line, -k, warnings once, the live view's parsing."""

from __future__ import annotations

import io

import pytest

from bakegen import report
from bakegen.errors import Diagnostic
from bakegen.progress import (
    KeywordError,
    LiveView,
    Terminal,
    closing_line,
    keyword_matches,
    paint,
    resolve_mode,
    use_color,
)


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("tty", "environ", "mode", "color"),
    [
        (True, {}, "tty", True),
        (False, {}, "plain", False),  # a pipe
        (True, {"CI": "true"}, "plain", True),  # CI with a terminal (e.g. `script`): a log, still coloured
        (True, {"CI": "false"}, "tty", True),
        (True, {"TERM": "dumb"}, "plain", False),
        (True, {"NO_COLOR": "1"}, "tty", False),
        (False, {"FORCE_COLOR": "1"}, "plain", True),
        (False, {"FORCE_COLOR": "0"}, "plain", False),
        (True, {"NO_COLOR": "1", "FORCE_COLOR": "1"}, "tty", False),  # NO_COLOR wins
        (False, {"NO_COLOR": ""}, "plain", False),  # an empty NO_COLOR is unset (no-color.org)
    ],
)
def test_auto_mode_and_colour_follow_the_terminal_and_environment(tty: bool, environ: dict[str, str], mode: str, color: bool) -> None:
    terminal = Terminal.of(_Stream(tty), environ)
    assert resolve_mode("auto", terminal) == mode
    assert use_color(terminal) is color


@pytest.mark.parametrize("requested", ["tty", "plain", "quiet", "rawjson"])
def test_an_explicit_mode_is_kept_whatever_the_terminal(requested: str) -> None:
    assert resolve_mode(requested, Terminal(is_tty=False, ci=True)) == requested  # type: ignore[arg-type]


def test_closing_line_has_every_count_and_the_time() -> None:
    assert closing_line([("built", 12), ("failed", 1)], 42.06) == "12 built, 1 failed in 42.1 s"
    assert closing_line([("passed", 3), ("failed", 0), ("skipped", 1)], 0.0) == "3 passed, 0 failed, 1 skipped in 0.0 s"


def test_paint_only_with_colour() -> None:
    assert paint("FAIL", "red", True) == "\x1b[31mFAIL\x1b[0m"
    assert paint("FAIL", "red", False) == "FAIL"


@pytest.mark.parametrize(
    ("expression", "name", "expected"),
    [
        ("server", "server-cpu::health", True),
        ("SERVER", "server-cpu::health", True),  # case-insensitive, as pytest
        ("::health", "light-cpu::version", False),
        ("not cuda", "light-cuda::cuda-env", False),
        ("not cuda", "light-cpu::version", True),
        ("light and not cuda", "light-cpu::version", True),
        ("light and not cuda", "light-cuda::version", False),
        ("health or version", "light-cpu::version", True),
        ("full and (help or run)", "full-cpu::run", True),
        ("full and (help or run)", "server-cpu::run", False),
        ("not (a or b)", "c::d", True),
    ],
)
def test_keyword_matches_like_pytest_k(expression: str, name: str, expected: bool) -> None:
    assert keyword_matches(expression, name) is expected


@pytest.mark.parametrize("expression", ["", "and", "a and", "(a", "a )", "not"])
def test_keyword_errors_are_reported(expression: str) -> None:
    with pytest.raises(KeywordError):
        keyword_matches(expression, "x::y")


def test_each_warning_once_and_none_with_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    warning = Diagnostic("bakegen.yaml", 3, 1, "variants.cpu", "Dockerfile x does not exist", "warning")
    report.configure()
    report.diagnostics([warning, warning])
    report.progress("note: the docker driver cannot export a build cache")
    report.progress("note: the docker driver cannot export a build cache")
    report.progress("==> build all")
    assert capsys.readouterr().err.splitlines() == [str(warning), "note: the docker driver cannot export a build cache", "==> build all"]
    report.configure()  # a new command: its own warnings again
    report.diagnostics([warning])
    assert capsys.readouterr().err == f"{warning}\n"
    report.configure(quiet=True)
    report.diagnostics([warning])
    report.progress("note: hidden")
    report.progress("==> hidden too")
    report.progress("bakegen: build failed")  # a problem: always shown
    assert capsys.readouterr().err == "bakegen: build failed\n"
    report.configure()


def test_live_view_follows_targets_through_the_plain_log() -> None:
    view = LiveView(["light-cpu", "server-cpu"], "all", color=False, stream=io.StringIO())
    view.line("#5 [light-cpu 2/3] RUN make")
    view.line("#7 [server-cpu build 1/2] FROM docker.io/library/debian")
    view.line("#7 ERROR: process did not complete")
    assert (view.targets["light-cpu"].state, view.targets["light-cpu"].step) == ("building", "[2/3] RUN make")
    assert view.targets["server-cpu"].state == "failing"
    view.finish(["server-cpu"])
    assert [t.state for t in view.targets.values()] == ["done", "failed"]


def test_live_view_of_one_target_takes_unnamed_steps() -> None:
    view = LiveView(["app-cpu"], "all", color=False, stream=io.StringIO())
    view.line("#3 [internal] load .dockerignore")
    assert view.targets["app-cpu"].state == "waiting"
    view.line("#6 [2/2] RUN sleep 1")
    assert (view.targets["app-cpu"].state, view.targets["app-cpu"].step) == ("building", "[2/2] RUN sleep 1")
