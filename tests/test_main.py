"""main.py: explicit dispatch, --help, and faults (no engine) shown as one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bakegen.commands.common import SpecOptions
from bakegen.commands.completion import CompletionOptions
from bakegen.commands.schema import SchemaOptions
from bakegen.init import InitOptions
from bakegen.main import build_parser, main
from tests.conftest import DEMO_DIR, LLAMA_SPEC, ROOT, Runner, clean_env

REQUIRED_ARGUMENTS = {"merge": ["--from", "digests"], "completion": ["bash"]}
# The verbs whose first argument is not the spec's options.
OPTIONS_TYPES: dict[str, type] = {"init": InitOptions, "schema": SchemaOptions, "completion": CompletionOptions}
# Every module under bakegen/commands/ is a verb, except the helpers they share.
VERBS = sorted([*(p.stem for p in (ROOT / "bakegen" / "commands").glob("*.py") if p.stem not in {"__init__", "common"}), "init"])


def test_help_lists_every_command(bakegen: Runner) -> None:
    result = bakegen("--help")
    assert result.returncode == 0
    listed = re.findall(r"^    ([a-z-]+)(?:  |$)", result.stdout, re.MULTILINE)  # a long verb: help on the next line
    assert sorted(listed) == VERBS, result.stdout
    assert len(VERBS) >= 8


@pytest.mark.parametrize("verb", VERBS)
def test_every_command_has_help_and_is_dispatched(bakegen: Runner, verb: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert bakegen(verb, "--help").returncode == 0
    calls: list[tuple[object, ...]] = []
    module = "bakegen.init.run_init" if verb == "init" else f"bakegen.commands.{verb}.run"
    monkeypatch.setattr(module, lambda *args, **kwargs: calls.append(args) or 0)
    assert main([verb, *REQUIRED_ARGUMENTS.get(verb, [])]) == 0
    assert len(calls) == 1 and isinstance(calls[0][0], OPTIONS_TYPES.get(verb, SpecOptions))


def test_no_namespace_below_main() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "bakegen").rglob("*.py")
        if path.name != "main.py" and re.search(r"\bargparse\b|\bNamespace\b", path.read_text())
    ]
    assert offenders == []


@pytest.mark.docker
@pytest.mark.parametrize("command", [["smoke", "light-cpu"], ["bake", "--load", "light-cpu"]])
def test_no_engine_is_a_one_line_error(bakegen: Runner, command: list[str]) -> None:
    result = bakegen(*command, cwd=DEMO_DIR, env=clean_env(DOCKER_HOST="unix:///nonexistent/docker.sock"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    # progress says what was about to run (`==> step`); the error itself is one line
    [line] = [line for line in result.stderr.strip().splitlines() if not line.startswith(("==> ", "    "))]
    assert line.startswith("bakegen: ") and ("nonexistent" in line or "Error while fetching server API version" in line), line


def test_usage_error_exits_2(bakegen: Runner) -> None:
    result = bakegen("bake", "--jobs", "0")
    assert result.returncode == 2 and "expected a whole number >= 1" in result.stderr


def test_render_path_never_imports_the_docker_libraries(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from bakegen.main import main\n"
        f"for command in (['validate', '-f', {str(LLAMA_SPEC)!r}], ['render', '-f', {str(LLAMA_SPEC)!r}, '-o', '-'],\n"
        f"                ['plan', '-f', {str(LLAMA_SPEC)!r}, '--json'], ['workflow', '-f', {str(LLAMA_SPEC)!r}, '-o', '-']):\n"
        "    assert main(command) == 0\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'python_on_whales', 'testcontainers', 'docker', 'pydantic', 'requests'})\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "HEAVY []"


def test_parser_builds() -> None:
    assert build_parser().prog == "bakegen"
