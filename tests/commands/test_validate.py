"""`bakegen validate`: exit codes, one line per problem, --strict."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import LLAMA_SPEC, MINIMAL_SPEC, Runner, write_spec


def test_valid_spec_with_warnings(bakegen: Runner) -> None:
    result = bakegen("validate", "-f", str(LLAMA_SPEC))
    assert result.returncode == 0
    assert "ok, 27 targets, 12 groups, 1 warning(s)" in result.stdout
    assert result.stderr.count("Dockerfiles not found") == 1  # one line, not one per Dockerfile


def test_strict_turns_warnings_into_errors(bakegen: Runner) -> None:
    result = bakegen("validate", "-f", str(LLAMA_SPEC), "--strict")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "warning:" not in line and ": variants: Dockerfiles not found" in line


def test_every_bad_input_exits_2_without_traceback(tmp_path: Path, bakegen: Runner) -> None:
    (tmp_path / "latin1.yaml").write_bytes(b"version: 1\nimage: {repository: \xe9}\n")
    cases = {
        "wrong type": write_spec(tmp_path, MINIMAL_SPEC.replace("version: 1", "version: '1'"), "a.yaml"),
        "unknown key": write_spec(tmp_path, MINIMAL_SPEC + "extra: true\n", "b.yaml"),
        "empty variants": write_spec(tmp_path, "version: 1\nimage: {repository: a/b}\nstages: [x]\nvariants: {}\n", "c.yaml"),
        "duplicate tags": write_spec(tmp_path, MINIMAL_SPEC + "tags: [fixed]\n", "d.yaml"),
        "yaml syntax": write_spec(tmp_path, "version: 1\n  image: : :\n", "e.yaml"),
        "non-utf8": tmp_path / "latin1.yaml",
        "directory": tmp_path,
        "missing": tmp_path / "missing.yaml",
    }
    for name, path in cases.items():
        result = bakegen("validate", "-f", str(path))
        assert result.returncode == 2, name
        assert "Traceback" not in result.stderr, name
        lines = result.stderr.splitlines()
        assert lines and all(line.startswith(str(path)) for line in lines), (name, lines)


def test_unknown_command_and_bad_flag_exit_2(bakegen: Runner) -> None:
    assert bakegen("frobnicate").returncode == 2
    assert bakegen("plan", "--var", "NOEQUALS").returncode == 2
