"""The two-CUDA rule: what --cuda-version (and its kin) and a CUDA_VERSION environment variable
mean when one bake variable, or several, feed the ARG CUDA_VERSION."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Runner, clean_env, write_spec

TWO_CUDA = """\
version: 1
image: {repository: example.com/app}
stages: [full]
variants:
  cpu: {dockerfile: Dockerfile, suffix: ""}
  cuda:
    dockerfile: Dockerfile
    args: {CUDA_VERSION: 12.4.0}
  cuda13:
    dockerfile: Dockerfile
    args: {CUDA_VERSION: {variable: CUDA13_VERSION, value: 13.0.0}}
"""
DOCKERFILE = "FROM scratch AS full\nARG CUDA_VERSION\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    write_spec(tmp_path, TWO_CUDA)
    return tmp_path


def cuda_args(bakegen: Runner, project: Path, *argv: str, **env: str) -> dict[str, str]:
    result = bakegen("plan", "--json", *argv, cwd=project, env=clean_env(**env))
    assert result.returncode == 0, result.stderr
    targets = json.loads(result.stdout)["target"]
    return {name: t["args"]["CUDA_VERSION"] for name, t in targets.items() if "args" in t}


@pytest.mark.parametrize("command", ["plan", "bake --dry-run", "smoke", "merge --dry-run --from nothing.json"])
def test_two_variables_feeding_one_arg_are_refused_naming_both(bakegen: Runner, project: Path, command: str) -> None:
    result = bakegen(*command.split(), "--cuda-version", "12.8.1", cwd=project)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "bakegen: --cuda-version: the ARG CUDA_VERSION comes from 2 bake variables in the selected targets: "
        "CUDA_VERSION (cuda), CUDA13_VERSION (cuda13); select one variant, or set each with --var NAME=VALUE"
    )


def test_one_variant_selected_sets_its_own_variable_whatever_its_name(bakegen: Runner, project: Path) -> None:
    assert cuda_args(bakegen, project, "--cuda-version", "13.1.0", "cuda13") == {"full-cuda13": "13.1.0"}
    assert cuda_args(bakegen, project, "--cuda-version", "12.8.1", "cuda") == {"full-cuda": "12.8.1"}


def test_one_variable_for_every_selected_target(bakegen: Runner, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    write_spec(tmp_path, TWO_CUDA.replace("{variable: CUDA13_VERSION, value: 13.0.0}", "12.4.0"))
    assert cuda_args(bakegen, tmp_path, "--cuda-version", "12.8.1") == {"full-cuda": "12.8.1", "full-cuda13": "12.8.1"}


def test_a_flag_no_selected_target_reads_is_refused(bakegen: Runner, project: Path) -> None:
    result = bakegen("plan", "--cuda-version", "12.8.1", "cpu", cwd=project)
    assert result.returncode == 2 and "--cuda-version: none of the selected targets has the ARG CUDA_VERSION" in result.stderr


def test_environment_sets_the_variable_of_that_name_and_says_what_it_cannot_reach(bakegen: Runner, project: Path) -> None:
    # CUDA_VERSION=… is the bake variable CUDA_VERSION, as for `docker buildx bake`: cuda only.
    assert cuda_args(bakegen, project, CUDA_VERSION="12.6.0") == {"full-cuda": "12.6.0", "full-cuda13": "13.0.0"}
    # With no variable of that name at all, the environment value would be read by nobody: a warning, not silence.
    read = bakegen("plan", "cuda", cwd=project, env=clean_env(CUDA_VERSION="12.6.0"))
    assert read.returncode == 0 and read.stderr.strip() == ""  # cuda reads the variable CUDA_VERSION: no warning
    # cuda13 alone: CUDA_VERSION is a variable of the spec, but not one the selected target reads
    result = bakegen("plan", "cuda13", cwd=project, env=clean_env(CUDA_VERSION="12.6.0"))
    assert result.returncode == 0
    assert "the ARG CUDA_VERSION comes from CUDA13_VERSION" in result.stderr
    write_spec(project, TWO_CUDA.replace("args: {CUDA_VERSION: 12.4.0}", "args: {CUDA_VERSION: {variable: CUDA12_VERSION, value: 12.4.0}}"))
    warned = bakegen("plan", cwd=project, env=clean_env(CUDA_VERSION="12.6.0"))
    assert warned.returncode == 0
    assert (
        "warning: CUDA_VERSION is set in the environment, but no selected target reads a bake variable of that name; "
        "the ARG CUDA_VERSION comes from CUDA12_VERSION, CUDA13_VERSION"
    ) in warned.stderr
