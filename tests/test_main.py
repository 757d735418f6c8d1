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
