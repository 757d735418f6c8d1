"""main.py: dispatch, --help, and errors from the Docker libraries shown as one line."""

from __future__ import annotations

import pytest

from tests.conftest import DEMO_DIR, Runner, clean_env


def test_help_lists_every_command(bakegen: Runner) -> None:
    result = bakegen("--help")
    assert result.returncode == 0
    for command in ("validate", "render", "plan", "bake", "merge", "smoke", "workflow", "matrix"):
        assert command in result.stdout


@pytest.mark.parametrize("command", [["smoke", "light-cpu"], ["bake", "--load", "light-cpu"]])
def test_no_engine_is_a_one_line_error(bakegen: Runner, command: list[str]) -> None:
    result = bakegen(*command, cwd=DEMO_DIR, env=clean_env(DOCKER_HOST="unix:///nonexistent/docker.sock"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "nonexistent" in result.stderr or "Error while fetching server API version" in result.stderr


def test_render_path_never_imports_the_docker_libraries(tmp_path: object) -> None:
    import subprocess
    import sys

    from tests.conftest import LLAMA_SPEC

    code = (
        "import sys\n"
        "from bakegen.main import main\n"
        f"for command in (['validate', '-f', {str(LLAMA_SPEC)!r}], ['render', '-f', {str(LLAMA_SPEC)!r}, '-o', '-'],\n"
        f"                ['plan', '-f', {str(LLAMA_SPEC)!r}, '--json'], ['workflow', '-f', {str(LLAMA_SPEC)!r}, '-o', '-']):\n"
        "    assert main(command) == 0\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'python_on_whales', 'testcontainers', 'docker', 'pydantic'})\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "HEAVY []"
