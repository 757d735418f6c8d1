"""The rendered files, parsed by the real `docker buildx bake --print`."""

from __future__ import annotations

import json
import shutil
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bakegen.planner import build_plan
from bakegen.render import bake_print, render
from bakegen.spec import load_spec
from tests.conftest import LLAMA_SPEC, MINIMAL_SPEC, Runner, clean_env, write_spec

pytestmark = pytest.mark.docker


def buildx_print(directory: Path, bake_file: str, *names: str, **env: str) -> dict[str, Any]:
    result = subprocess.run(
        ["docker", "buildx", "bake", "-f", bake_file, "--print", *names],
        cwd=directory, env=clean_env(**env), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed: dict[str, Any] = json.loads(result.stdout)
    return printed


def computed(bakegen: Runner, directory: Path) -> dict[str, str]:
    """The values bakegen computes from git (`versioning`), which bake itself reads from the environment."""
    result = bakegen("version", "--json", cwd=directory)
    assert result.returncode == 0, result.stderr
    variables: dict[str, str] = json.loads(result.stdout)["variables"]
    return variables


@pytest.fixture
def llama_dir(tmp_path: Path, bakegen: Runner) -> Path:
    shutil.copy(LLAMA_SPEC, tmp_path / "bakegen.yaml")
    for fmt in ("hcl", "json"):
        assert bakegen("render", "--format", fmt, cwd=tmp_path).returncode == 0
    return tmp_path


@pytest.mark.parametrize("names", [[], ["cuda", "server"], ["full-cpu"], ["default"]])
@pytest.mark.parametrize("bake_file", ["docker-bake.hcl", "docker-bake.json"])
def test_buildx_resolves_what_plan_json_says(llama_dir: Path, bakegen: Runner, bake_file: str, names: list[str]) -> None:
    plan = bakegen("plan", "--json", *names, cwd=llama_dir)
    assert plan.returncode == 0
    assert buildx_print(llama_dir, bake_file, *names, **computed(bakegen, llama_dir)) == json.loads(plan.stdout)


def test_plan_json_is_byte_identical_to_buildx(llama_dir: Path, bakegen: Runner) -> None:
    env = clean_env(**computed(bakegen, llama_dir))
    raw = subprocess.run(["docker", "buildx", "bake", "--print"], cwd=llama_dir, env=env, capture_output=True, text=True)
    assert bakegen("plan", "--json", cwd=llama_dir).stdout == raw.stdout
    assert '"org.opencontainers.image.version": "dev"' in raw.stdout  # the fallback without git, with a note


def test_llama_images_with_seed_tags_platforms_and_defaults(llama_dir: Path) -> None:
    targets = buildx_print(llama_dir, "docker-bake.hcl")["target"]
    repo = "ghcr.io/ggml-org/llama.cpp"
    suffixes = ("", "-cuda", "-cuda13", "-rocm", "-musa", "-vulkan", "-intel", "-openvino")
    assert {t["tags"][0] for t in targets.values()} == {
        f"{repo}:{stage}{suffix}" for stage in ("full", "light", "server") for suffix in suffixes
    }
    for name, target in targets.items():
        variant = name.split("-", 1)[1]
        platforms = {"cpu": ["linux/amd64", "linux/arm64"], "rocm": ["linux/amd64", "linux/arm64"], "cpu-s390x": ["linux/s390x"]}
        assert target["platforms"] == platforms.get(variant, ["linux/amd64"])
        assert target["args"] if variant in ("cuda", "cuda13", "musa") else "args" not in target
    assert (
        targets["full-cpu-s390x"]["dockerfile"] == ".devops/s390x.Dockerfile"
        and targets["full-cpu-s390x"]["tags"] == targets["full-cpu"]["tags"]
    )
    assert targets["server-cuda13"]["args"] == {"CUDA_VERSION": "13.0.0", "CUDA_DOCKER_ARCH": "default"}
    assert targets["full-cuda"]["args"] == {"CUDA_VERSION": "12.4.0", "CUDA_DOCKER_ARCH": "default"}
    assert targets["light-musa"]["args"] == {"MUSA_VERSION": "rc3.1.1"}


def test_cuda_version_from_environment_changes_only_cuda_targets(llama_dir: Path) -> None:
    before = buildx_print(llama_dir, "docker-bake.hcl")
    after = buildx_print(llama_dir, "docker-bake.hcl", CUDA_VERSION="12.6.0")
    for name in ("full-cuda", "light-cuda", "server-cuda"):
        assert after["target"][name]["args"]["CUDA_VERSION"] == "12.6.0"
        after["target"][name]["args"]["CUDA_VERSION"] = "12.4.0"
    assert after == before


def test_version_and_repository_override(llama_dir: Path) -> None:
    printed = buildx_print(llama_dir, "docker-bake.hcl", "server-cuda", VERSION="b4567", REPO="local/llama.cpp")
    assert printed["target"]["server-cuda"]["tags"] == ["local/llama.cpp:server-cuda", "local/llama.cpp:server-cuda-b4567"]


def _representable(text: str) -> bool:
    return unicodedata.is_normalized("NFC", text)


# Any string YAML can carry (no surrogates) that buildx does not normalise (NFC).
yaml_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30).filter(_representable)


# Each example runs buildx twice.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arg=yaml_text, fixed=yaml_text, label_key=yaml_text.filter(bool), label_value=yaml_text, tag=yaml_text.filter(bool))
def test_arbitrary_strings_survive_render_and_buildx(
    tmp_path: Path, arg: str, fixed: str, label_key: str, label_value: str, tag: str
) -> None:
    spec: dict[str, Any] = yaml.safe_load(MINIMAL_SPEC)
    spec["variants"] = {"cpu": {"dockerfile": "Dockerfile", "args": {"A": arg, "F": {"value": fixed, "variable": None}}}}
    spec["stages"] = ["full"]
    spec["labels"] = {label_key: label_value.replace("{", "{{").replace("}", "}}")}  # label values take placeholders
    spec["tags"] = [tag.replace("{", "{{").replace("}", "}}")]
    path = write_spec(tmp_path, yaml.safe_dump(spec, allow_unicode=False))
    plan, problems = build_plan(load_spec(path))
    assert [p for p in problems if p.severity == "error"] == []
    for fmt in ("hcl", "json"):
        (tmp_path / f"docker-bake.{fmt}").write_text(render(plan, fmt), encoding="utf-8")  # type: ignore[arg-type]
        target = buildx_print(tmp_path, f"docker-bake.{fmt}")["target"]["full-cpu"]
        assert target["args"] == {"A": arg, "F": fixed}
        assert target["labels"] == {label_key: label_value}
        assert target["tags"] == [f"example.com/app:{tag}"]
        assert buildx_print(tmp_path, f"docker-bake.{fmt}") == bake_print(plan, plan.values({}, environ={}))
