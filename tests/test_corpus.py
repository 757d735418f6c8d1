"""The hostile-input corpus: every file in tests/corpus/ is a spec run through the real CLI.

FORMAT. A case is one file, tests/corpus/GROUP-WHAT.yaml, holding the spec text itself. Its
leading comment lines (`# key: value`, before the first line that is not a comment; a UTF-8
BOM before them is allowed) are the expectations. Positions in the case count those lines.

    # exit: 2                      exit code of every command (default 2)
    # at: 7:12                     stderr names the spec at this LINE:COL ("FILE:7:12:");
    #                              `# at: none` when the problem has no position ("FILE: ...")
    # error: text                  stderr contains this text (repeatable)
    # absent: text                 neither stdout nor stderr contains this text (repeatable)
    # output-contains: text        with exit 0: the rendered bake file contains this text
    # commands: validate render    what to run (default: both); render writes -o OUT, which
    #                              must not exist afterwards unless the exit code is 0
    # subprocess: yes              run in a fresh interpreter under RLIMIT_AS (1 GiB) and a
    #                              timeout: for anything that could hang or eat memory if broken
    # timeout: 20                  seconds, for subprocess cases (default 30)
    # setup: KIND                  what is passed as -f instead of a copy of the case file:
    #   fifo / chardev / socket / directory / missing        a FIFO, /dev/zero, a UNIX socket,
    #                                                        a directory, a path that does not exist
    #   symlink                    a symlink (named bakegen.yaml) to a copy of the case file
    #   dangling-symlink / symlink-loop
    #   oversize                   the case padded with comment lines to just over 1 MiB
    #   utf16                      the case's text after its header, encoded as UTF-16 with a BOM
    #   nonutf8-name               the case copied to a file whose name has the byte 0xff
    #   escape-name                the case copied to a file whose name has ESC and a newline
    #
Every case also asserts: no "Traceback" anywhere, the exit code, and (exit != 0) no output file.

Cases run in-process through bakegen.main.main(argv) (subprocess start-up is ~0.3 s each);
`# subprocess: yes` cases run `python -m bakegen` in a child. BAKEGEN_CORPUS_SUBPROCESS=1 runs
every case in a child, as CI does in its slow job.

To add a case: write the file, run `pytest tests/test_corpus.py -k NAME`, and check that the
position and messages it reports are the ones a user should see.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import socket
import subprocess
import sys
import time
import traceback
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bakegen.main import main
from tests.conftest import ROOT, clean_env

CORPUS = Path(__file__).resolve().parent / "corpus"
MEMORY_LIMIT = 1 << 30
RUN_ALL_IN_SUBPROCESS = os.environ.get("BAKEGEN_CORPUS_SUBPROCESS") == "1"
_SETUPS = {
    "fifo",
    "chardev",
    "socket",
    "directory",
    "missing",
    "symlink",
    "dangling-symlink",
    "symlink-loop",
    "oversize",
    "utf16",
    "nonutf8-name",
    "escape-name",
}
_KEYS = {"exit", "at", "error", "absent", "output-contains", "commands", "subprocess", "timeout", "setup"}


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    exit: int = 2
    at: str | None = None
    errors: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    output_contains: tuple[str, ...] = ()
    commands: tuple[str, ...] = ("validate", "render")
    subprocess: bool = False
    timeout: float = 30
    setup: str | None = None
    header_lines: int = 0


def read_case(path: Path) -> Case:
    text = path.read_bytes().decode("utf-8", "replace").removeprefix("\ufeff")
    values: dict[str, list[str]] = {}
    header_lines = 0
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header_lines += 1
        key, sep, value = line[1:].strip().partition(":")
        if sep and key.strip() in _KEYS:
            values.setdefault(key.strip(), []).append(value.strip())
        elif sep and key.strip().isidentifier() and " " not in key.strip():
            raise ValueError(f"{path.name}: unknown expectation {key.strip()!r}; known: {', '.join(sorted(_KEYS))}")

    def one(key: str) -> str | None:
        found = values.get(key, [])
        if len(found) > 1:
            raise ValueError(f"{path.name}: {key} given {len(found)} times")
        return found[0] if found else None

    setup = one("setup")
    if setup is not None and setup not in _SETUPS:
        raise ValueError(f"{path.name}: unknown setup {setup!r}; known: {', '.join(sorted(_SETUPS))}")
    commands = tuple((one("commands") or "validate render").split())
    if not set(commands) <= {"validate", "render"}:
        raise ValueError(f"{path.name}: commands are validate and/or render")
    return Case(
        name=path.stem,
        path=path,
        exit=int(one("exit") or 2),
        at=one("at"),
        errors=tuple(values.get("error", [])),
        absent=tuple(values.get("absent", [])),
        output_contains=tuple(values.get("output-contains", [])),
        commands=commands,
        subprocess=(one("subprocess") or "no") == "yes",
        timeout=float(one("timeout") or 30),
        setup=setup,
        header_lines=header_lines,
    )


CASES = sorted(p for p in CORPUS.iterdir() if p.is_file() and not p.name.startswith("."))


def test_corpus_is_large_enough_and_every_case_parses() -> None:
    cases = [read_case(p) for p in CASES]
    assert len(cases) >= 40
    for case in cases:
        # A failing case must say where (or say there is no position) and what.
        assert case.exit == 0 or (case.at is not None and case.errors), f"{case.name}: give `# at:` and `# error:`"


@contextlib.contextmanager
def spec_argument(case: Case, directory: Path) -> Iterator[str]:
    """The -f argument for a case, after building what its setup asks for."""
    raw = case.path.read_bytes()
    setup = case.setup
    if setup in (None, "oversize", "utf16"):
        target = directory / case.path.name
        if setup == "oversize":
            raw += b"#" * 100 + b"\n"
            raw += (b"# " + b"x" * 1021 + b"\n") * 1025
        elif setup == "utf16":
            body = raw.decode("utf-8").split("\n", case.header_lines)[-1]
            raw = body.encode("utf-16")
        target.write_bytes(raw)
        yield str(target)
    elif setup in ("symlink", "nonutf8-name", "escape-name"):
        if setup == "symlink":
            (directory / "credentials").write_bytes(raw)
            (directory / "bakegen.yaml").symlink_to(directory / "credentials")
            yield str(directory / "bakegen.yaml")
        else:
            name = os.fsdecode(b"spec-\xff.yaml") if setup == "nonutf8-name" else "spec-\x1b[31m-\n.yaml"
            (directory / name).write_bytes(raw)
            yield str(directory / name)
    elif setup == "fifo":
        os.mkfifo(directory / "bakegen.yaml")
        yield str(directory / "bakegen.yaml")
    elif setup == "chardev":
        yield "/dev/zero"
    elif setup == "socket":
        with socket.socket(socket.AF_UNIX) as server:
            path = directory / "s.yaml"  # short: a UNIX socket path is limited to ~100 bytes
            server.bind(str(path))
            yield str(path)
    elif setup == "directory":
        yield str(directory)
    elif setup == "missing":
        yield str(directory / "nope.yaml")
    elif setup == "dangling-symlink":
        (directory / "bakegen.yaml").symlink_to(directory / "gone.yaml")
        yield str(directory / "bakegen.yaml")
    elif setup == "symlink-loop":
        (directory / "a.yaml").symlink_to(directory / "b.yaml")
        (directory / "b.yaml").symlink_to(directory / "a.yaml")
        yield str(directory / "a.yaml")
    else:
        raise AssertionError(setup)


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str
    seconds: float


def run_in_process(argv: list[str]) -> Outcome:
    stdout, stderr = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            # Reported as the subprocess would show it: the test then fails on "Traceback".
            stderr.write(traceback.format_exc())
            code = 1
    return Outcome(code, stdout.getvalue(), stderr.getvalue(), time.monotonic() - started)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_in_subprocess(argv: list[str], env: dict[str, str], timeout: float) -> Outcome:
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "bakegen", *argv], env=env, capture_output=True, timeout=timeout, preexec_fn=_limit_memory, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"bakegen {' '.join(argv)} ran longer than {timeout} s")
    stdout, stderr = (data.decode("utf-8", "backslashreplace") for data in (result.stdout, result.stderr))
    return Outcome(result.returncode, stdout, stderr, time.monotonic() - started)


def shown(path: str) -> str:
    """How bakegen prints a path: undecodable bytes as \\xNN, control characters escaped."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


@pytest.mark.parametrize("case_path", CASES, ids=[p.stem for p in CASES])
def test_case(case_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = read_case(case_path)
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    work = tmp_path / "work"
    work.mkdir()
    with spec_argument(case, work) as spec:
        for command in case.commands:
            output = tmp_path / f"out-{command}.hcl"
            argv = [command, "-f", spec] + (["-o", str(output)] if command == "render" else [])
            if case.subprocess or RUN_ALL_IN_SUBPROCESS:
                outcome = run_in_subprocess(argv, clean_env(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(cache)), case.timeout)
            else:
                outcome = run_in_process(argv)
            both = outcome.stdout + outcome.stderr
            context = f"bakegen {command} -f {case.name}: exit {outcome.code}\n--- stdout\n{outcome.stdout}--- stderr\n{outcome.stderr}"
            assert "Traceback" not in both, context
            # Nothing from a file or its name reaches the terminal raw: no escape sequences, no forged lines.
            assert not [ch for ch in both if unicodedata.category(ch) == "Cc" and ch != "\n"], context
            assert outcome.code == case.exit, context
            if case.at == "none":
                assert f"{shown(spec)}: " in outcome.stderr, context
            elif case.at is not None:
                assert f"{shown(spec)}:{case.at}: " in outcome.stderr, context
            for text in case.errors:
                assert text in outcome.stderr, context
            for text in case.absent:
                assert text not in both, context
            if command == "render":
                if case.exit == 0:
                    rendered = output.read_text(encoding="utf-8")
                    for text in case.output_contains:
                        assert text in rendered, context
                else:
                    assert not output.exists(), context


def test_render_with_a_non_utf8_spec_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    directory = tmp_path / os.fsdecode(b"d\xff")
    directory.mkdir()
    spec = directory / "bakegen.yaml"
    spec.write_text("version: 1\nimage: {repository: a/b}\nstages: [x]\nvariants: {cpu: {dockerfile: D}}\n")
    outcome = run_in_process(["render", "-f", str(spec), "-o", str(tmp_path / "out.hcl")])
    assert "Traceback" not in outcome.stderr
    assert outcome.code == 0


def test_validate_ok_line_with_a_non_utf8_spec_path(tmp_path: Path) -> None:
    directory = tmp_path / os.fsdecode(b"d\xff")
    directory.mkdir()
    spec = directory / "bakegen.yaml"
    spec.write_text("version: 1\nimage: {repository: a/b}\nstages: [x]\nvariants: {cpu: {dockerfile: D}}\n")
    env = clean_env(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONIOENCODING="utf-8")
    outcome = run_in_subprocess(["validate", "-f", str(spec)], env, 30)
    assert "Traceback" not in outcome.stderr
    assert outcome.code == 0
