"""output.py: atomic writes, --check, and every way an output path can be bad or hostile."""

from __future__ import annotations

import errno
import os
import signal
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bakegen.errors import BakegenError, printable
from bakegen.output import emit, stale_diff, write_atomic
from tests.conftest import MINIMAL_SPEC, Runner, write_spec

DOCKERFILE = "FROM scratch AS full\nARG CUDA_VERSION\nFROM scratch AS server\nARG CUDA_VERSION\n"


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    """A valid spec with a Dockerfile that matches it, so render prints no warnings."""
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "Dockerfile").write_text(DOCKERFILE)
    return write_spec(directory, MINIMAL_SPEC)


@pytest.fixture
def alarm() -> Iterator[None]:
    """Turns a hang (reading a FIFO) into a failure instead of a stuck test run."""

    def hung(*_: object) -> None:
        raise TimeoutError("hung for 10 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_write_atomic_keeps_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "docker-bake.hcl"
    target.write_text("old\n")

    def boom(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("bakegen.output.os.replace", boom)
    with pytest.raises(BakegenError, match=r"docker-bake.hcl: cannot write: No space left on device$"):
        write_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["docker-bake.hcl"]


def test_write_atomic_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("old\n")
    target.chmod(0o600)
    write_atomic(target, "new\n")
    assert (target.read_text(), stat.S_IMODE(target.stat().st_mode)) == ("new\n", 0o600)


def test_stale_diff(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("a\n")
    assert stale_diff(target, "a\n") is None
    assert "+b" in (stale_diff(target, "b\n") or "")


# Each builds a bad -o path in tmp_path and returns it with the reason bakegen must give.
def _parent_is_a_file(tmp: Path) -> tuple[str, str]:
    (tmp / "plain").write_text("x")
    return str(tmp / "plain" / "out.hcl"), f"cannot write: {tmp / 'plain'} is not a directory"


def _ancestor_is_a_file(tmp: Path) -> tuple[str, str]:
    (tmp / "plain").write_text("x")
    return str(tmp / "plain" / "a" / "b" / "out.hcl"), f"cannot write: {tmp / 'plain'} is not a directory"


def _fifo(tmp: Path) -> tuple[str, str]:
    os.mkfifo(tmp / "pipe")
    return str(tmp / "pipe"), "not a regular file; bakegen only replaces regular files"


def _directory(tmp: Path) -> tuple[str, str]:
    return str(tmp), "is a directory; give a file path with -o"


def _symlink_loop(tmp: Path) -> tuple[str, str]:
    (tmp / "a.hcl").symlink_to(tmp / "b.hcl")
    (tmp / "b.hcl").symlink_to(tmp / "a.hcl")
    return str(tmp / "a.hcl"), "cannot write: a symlink loop"


def _read_only_directory(tmp: Path) -> tuple[str, str]:
    if os.geteuid() == 0:
        pytest.skip("root writes into a mode-555 directory; /sys stands in for a directory root cannot write")
    (tmp / "ro").mkdir(mode=0o555)
    return str(tmp / "ro" / "out.hcl"), f"cannot write: cannot create a file in {tmp / 'ro'}: Permission denied"


BAD_OUTPUTS: dict[str, Callable[[Path], tuple[str, str]]] = {
    "parent-is-a-file": _parent_is_a_file,
    "ancestor-is-a-file": _ancestor_is_a_file,
    "proc": lambda _: ("/proc/bakegen-test.hcl", "cannot write: cannot create a file in /proc: No such file or directory"),
    "proc-existing-file": lambda _: ("/proc/self/status", "cannot write: cannot create a file in /proc/self"),
    "sys": lambda _: ("/sys/bakegen-test.hcl", "cannot write: cannot create a file in /sys: "),
    "read-only-directory": _read_only_directory,
    "fifo": _fifo,
    "directory": _directory,
    "symlink-loop": _symlink_loop,
}


UNWRITABLE = [
    pytest.param(command, make, id=f"{command}-{name}") for command in ("render", "workflow") for name, make in BAD_OUTPUTS.items()
]


@pytest.mark.parametrize(("command", "make"), UNWRITABLE)
def test_unwritable_output_is_one_line_and_exit_2(
    command: str, make: Callable[[Path], tuple[str, str]], bakegen: Runner, spec: Path, tmp_path: Path, alarm: None
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output, reason = make(out_dir)
    before = sorted(out_dir.rglob("*"))
    result = bakegen(command, "-f", str(spec), "-o", output)
    assert (result.returncode, result.stdout) == (2, ""), result
    # workflow may first warn about the spec (workflow.repository unset); the failure is one line of its own
    errors = [line for line in result.stderr.splitlines() if ": warning: " not in line]
    assert errors[0].startswith(f"bakegen: {output}: {reason}"), result.stderr
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert sorted(out_dir.rglob("*")) == before  # no temporary file left behind, nothing replaced
    if command == "render" and "pipe" in output:
        assert stat.S_ISFIFO(os.stat(output).st_mode)


def test_check_against_a_fifo_fails_instead_of_hanging(bakegen: Runner, spec: Path, tmp_path: Path, alarm: None) -> None:
    os.mkfifo(tmp_path / "pipe")
    result = bakegen("render", "-f", str(spec), "-o", str(tmp_path / "pipe"), "--check")
    assert result.returncode == 2
    assert result.stderr == f"bakegen: {tmp_path / 'pipe'}: not a regular file; --check compares with a regular file\n"


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_output_symlink_is_written_through_and_kept(bakegen: Runner, spec: Path, tmp_path: Path, relative: bool) -> None:
    real = tmp_path / "generated" / "docker-bake.hcl"
    real.parent.mkdir()
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "docker-bake.hcl"
    link.symlink_to(os.path.relpath(real, tmp_path) if relative else real)
    result = bakegen("render", "-f", str(spec), "-o", str(link))
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text().startswith("# Generated by bakegen") and stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(p.name for p in real.parent.iterdir()) == ["docker-bake.hcl"]
    assert bakegen("render", "-f", str(spec), "-o", str(link), "--check").returncode == 0


def test_dangling_output_symlink_creates_its_target(bakegen: Runner, spec: Path, tmp_path: Path) -> None:
    link, chain, real = tmp_path / "link.hcl", tmp_path / "chain.hcl", tmp_path / "new" / "real.hcl"
    link.symlink_to(chain)
    chain.symlink_to(real)
    result = bakegen("render", "-f", str(spec), "-o", str(link))
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and chain.is_symlink() and real.is_file()
    assert "target" in real.read_text()


def test_non_utf8_output_path_is_written_and_shown_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / os.fsdecode(b"out-\xff-\x1b[31m.hcl")
    assert emit("generated\n", str(output), check=False, regenerate="bakegen render") == 0
    assert os.fsencode(output.name) in os.listdir(os.fsencode(tmp_path)) and output.read_text() == "generated\n"
    assert capsys.readouterr().err == f"wrote {tmp_path}/out-\\xff-\\x1b[31m.hcl\n"
    output.write_text("stale\n")
    assert emit("generated\n", str(output), check=True, regenerate=f"bakegen render -o {output}") == 1
    checked = capsys.readouterr()
    assert f"--- {tmp_path}/out-\\xff-\\x1b[31m.hcl (on disk)" in checked.out
    assert (
        checked.err
        == f"{tmp_path}/out-\\xff-\\x1b[31m.hcl is stale; regenerate with: bakegen render -o {tmp_path}/out-\\xff-\\x1b[31m.hcl\n"
    )
    for text in (checked.out, checked.err):
        assert not [ch for ch in text if (not ch.isprintable() and ch != "\n") or 0xDC80 <= ord(ch) <= 0xDCFF]


def test_text_that_cannot_be_encoded_is_a_clean_error(tmp_path: Path) -> None:
    # Defence in depth: a non-UTF-8 file name that reached the text unescaped.
    with pytest.raises(BakegenError, match=r"out.hcl: cannot write: the text is not valid Unicode \(surrogates not allowed\)$"):
        write_atomic(tmp_path / "out.hcl", "# from " + os.fsdecode(b"\xff") + "\n")
    assert list(tmp_path.iterdir()) == []


COMMENT_TEXT = [
    ("bakegen.yaml", "bakegen.yaml"),
    ("café/ünïcode.yaml", "café/ünïcode.yaml"),
    ("a\nb", "a\\nb"),
    ("a\r\nb", "a\\r\\nb"),
    ("\x1b[31mred", "\\x1b[31mred"),
    ("nul\x00", "nul\\x00"),
    ("del\x7f", "del\\x7f"),
    ("line\u2028sep", "line\\u2028sep"),
    ("rlo\u202eevil", "rlo\\u202eevil"),
    (os.fsdecode(b"latin1-\xe9.yaml"), "latin1-\\xe9.yaml"),
    ("lone\ud800", "lone\\ud800"),
]


@pytest.mark.parametrize(("text", "expected"), COMMENT_TEXT)
def test_printable(text: str, expected: str) -> None:
    assert printable(text) == expected
    assert printable(text).encode("utf-8")  # always encodable: no surrogates left


@pytest.mark.parametrize("command", ["render", "workflow"])
@pytest.mark.parametrize("hostile", ["spec", "output"])
@pytest.mark.parametrize(("name", "shown"), [(b"x\nRUN evil", "x\\nRUN evil"), (b"x\xff", "x\\xff")], ids=["newline", "non-utf8"])
def test_header_comment_cannot_be_broken_out_of(
    bakegen: Runner, tmp_path: Path, command: str, hostile: str, name: bytes, shown: str
) -> None:
    directory = tmp_path / (os.fsdecode(name) if hostile == "spec" else "project")
    directory.mkdir()
    (directory / "Dockerfile").write_text(DOCKERFILE)
    spec = write_spec(directory, MINIMAL_SPEC)
    output = tmp_path / (os.fsdecode(name) if hostile == "output" else "out")
    result = bakegen(command, "-f", str(spec), "-o", str(output))
    assert result.returncode == 0, result.stderr
    header = output.read_text(encoding="utf-8").split("\n\n")[0]
    assert "\nRUN evil" not in header and shown in header
    assert all(line.startswith("#") for line in header.splitlines())
