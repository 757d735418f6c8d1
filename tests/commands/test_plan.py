"""`bakegen plan`: the table and the bake --print shape."""

from __future__ import annotations

import json

from tests.conftest import LLAMA_SPEC, Runner, clean_env


def test_table_lists_targets_with_resolved_tags_and_args(bakegen: Runner) -> None:
    result = bakegen("plan", "-f", str(LLAMA_SPEC), "--var", "VERSION=b4567", "cuda")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TARGET", "DOCKERFILE", "STAGE", "PLATFORMS", "TAGS", "ARGS"]
    assert lines[3].split() == [
        "server-cuda", ".devops/cuda.Dockerfile", "server", "linux/amd64", "server-cuda", "server-cuda-b4567",
        "CUDA_DOCKER_ARCH=default", "CUDA_VERSION=12.4.0",
    ]  # fmt: skip
    assert len([line for line in lines if line.startswith(("full-", "light-", "server-"))]) == 3


def test_json_honours_environment(bakegen: Runner) -> None:
    result = bakegen("plan", "-f", str(LLAMA_SPEC), "--json", "full-cuda", env=clean_env(CUDA_VERSION="12.6.0"))
    printed = json.loads(result.stdout)
    assert printed["group"] == {"default": {"targets": ["full-cuda"]}}
    assert printed["target"]["full-cuda"]["args"]["CUDA_VERSION"] == "12.6.0"


def test_unknown_target(bakegen: Runner) -> None:
    result = bakegen("plan", "-f", str(LLAMA_SPEC), "nope")
    assert result.returncode == 2
    assert "'nope' is neither a target nor a group" in result.stderr
