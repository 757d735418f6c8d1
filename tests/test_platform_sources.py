"""Platform sources: one tag whose platforms come from several Dockerfiles (llama.cpp's s390x).

planner -> model -> slices -> render -> merge grouping -> workflow, on one small spec; the demo's
real three-platform manifest list is checked against the registry in tests/test_demo_publish.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bakegen.model import BuildPlan
from bakegen.planner import build_plan
from bakegen.slices import for_native, for_platform
from bakegen.spec import load_spec
from bakegen.steps import BuiltImage, MergeStep, RunRecord
from bakegen.workflow import generate_workflow, job_matrix
from tests.conftest import Runner, clean_env, unavailable_reason, write_spec

SPEC = """\
version: 1
image: {repository: example.com/app}
stages: [full, light]
tags: ["{stage}{suffix}"]
variants:
  cpu:
    dockerfile: cpu.Dockerfile
    platforms: [linux/amd64, linux/arm64]
    suffix: ""
    args: {LEVEL: "2"}
    platform-sources:
      s390x:
        dockerfile: s390x.Dockerfile
        platforms: [linux/s390x]
        args: {ZARCH: z15}
        targets: {light: light-z}
  cuda:
    dockerfile: cpu.Dockerfile
"""
CPU_DOCKERFILE = "FROM scratch AS full\nARG LEVEL\nFROM scratch AS light\nARG LEVEL\n"
S390X_DOCKERFILE = "FROM scratch AS full\nARG LEVEL\nARG ZARCH\nFROM scratch AS light-z\nARG LEVEL\nARG ZARCH\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "cpu.Dockerfile").write_text(CPU_DOCKERFILE)
    (tmp_path / "s390x.Dockerfile").write_text(S390X_DOCKERFILE)
    write_spec(tmp_path, SPEC)
    return tmp_path


def plan_and_problems(directory: Path, text: str = SPEC) -> tuple[BuildPlan, list[str]]:
    plan, problems = build_plan(load_spec(write_spec(directory, text)))
    return plan, [str(p) for p in problems]


def test_a_source_is_one_more_target_per_stage_with_the_same_tags(project: Path) -> None:
    plan, problems = plan_and_problems(project)
    assert problems == []
    by_name = {t.name: t for t in plan.targets}
    assert list(by_name) == ["full-cpu", "full-cpu-s390x", "light-cpu", "light-cpu-s390x", "full-cuda", "light-cuda"]
    light_z = by_name["light-cpu-s390x"]
    assert (light_z.dockerfile, light_z.platforms, light_z.bake_target, light_z.stage) == (
        "s390x.Dockerfile",
        ("linux/s390x",),
        "light-z",
        "light",
    )
    assert by_name["full-cpu-s390x"].bake_target == "full"
    assert light_z.tags == by_name["light-cpu"].tags  # published under the same tags
    assert dict(light_z.args).keys() == {"LEVEL", "ZARCH"}  # the variant's args, and its own
    assert light_z.tag_owner == "light-cpu" and by_name["light-cpu"].tag_owner == "light-cpu"
    assert [t.name for t in plan.tag_members("light-cpu")] == ["light-cpu", "light-cpu-s390x"]
    groups = {g.name: g.targets for g in plan.groups}
    assert groups["cpu"] == ("full-cpu", "full-cpu-s390x", "light-cpu", "light-cpu-s390x")


def test_choosing_a_tag_chooses_every_platform_of_it(project: Path) -> None:
    plan, _ = plan_and_problems(project)
    assert [t.name for t in plan.select(["light-cpu"])] == ["light-cpu", "light-cpu-s390x"]
    assert [t.name for t in plan.select(["light-cpu-s390x"])] == ["light-cpu-s390x"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("platforms: [linux/s390x]", "platforms: [linux/s390x, linux/arm64]"),
            "variants.cpu.platform-sources.s390x.platforms[1]: linux/arm64 is already built from the variant's own dockerfile",
        ),
        (("targets: {light: light-z}", "targets: {server: light-z}"), "platform-sources.s390x.targets.server: 'server' is not a stage"),
        (("platforms: [linux/s390x]", "platforms: [linux/s390]"), "platform-sources.s390x.platforms[0]: unknown architecture"),
        (("args: {ZARCH: z15}", "args: {LEVEL: '3'}"), "bake variable LEVEL already has the default '2'"),
        (
            ("    platform-sources:\n", "    platform-sources:\n      t: {dockerfile: t, platforms: [linux/s390x]}\n"),
            "is already built from platform source 't'",
        ),
    ],
)
def test_source_problems_are_located(project: Path, change: tuple[str, str], expected: str) -> None:
    _, problems = plan_and_problems(project, SPEC.replace(*change))
    assert any(expected in p for p in problems), problems


def test_an_unknown_key_in_a_source_is_a_schema_error(project: Path, bakegen: Runner) -> None:
    write_spec(project, SPEC.replace("targets: {light: light-z}", "target: light-z"))
    result = bakegen("validate", cwd=project)
    assert result.returncode == 2 and "platform-sources.s390x" in result.stderr and "target" in result.stderr, result


def test_dockerfile_checks_read_each_sources_own_dockerfile(project: Path, bakegen: Runner) -> None:
    assert bakegen("validate", "--strict", cwd=project).returncode == 0
    (project / "s390x.Dockerfile").write_text("FROM scratch AS full\nARG LEVEL\nARG ZARCH\n")
    result = bakegen("validate", cwd=project)
    assert result.returncode == 2
    assert "variants.cpu.platform-sources.s390x.dockerfile: s390x.Dockerfile has no stage 'light-z'" in result.stderr


def test_per_platform_slices_and_the_native_build(project: Path) -> None:
    plan, _ = plan_and_problems(project)
    s390x = for_platform(plan, "linux/s390x")
    assert [t.name for t in s390x.targets] == ["full-cpu-s390x", "light-cpu-s390x"]
    native = for_native(plan, "linux/amd64")  # one image per tag: the source building s390x drops out
    assert [(t.name, t.platforms) for t in native.targets] == [
        ("full-cpu", ("linux/amd64",)),
        ("light-cpu", ("linux/amd64",)),
        ("full-cuda", ("linux/amd64",)),
        ("light-cuda", ("linux/amd64",)),
    ]
    on_z = for_native(plan, "linux/s390x")
    assert [t.name for t in on_z.targets] == ["full-cpu-s390x", "light-cpu-s390x", "full-cuda", "light-cuda"]


def test_merge_publishes_one_list_per_tag_from_every_source(project: Path) -> None:
    plan, _ = plan_and_problems(project)
    images = tuple(
        BuiltImage(f"{target}@{platform}", target, platform, "example.com/app", (), digest=f"sha256:{n:064x}")
        for n, (target, platform) in enumerate(
            [("light-cpu", "linux/amd64"), ("light-cpu", "linux/arm64"), ("light-cpu-s390x", "linux/s390x"), ("full-cpu", "linux/amd64")]
        )
    )
    merge = MergeStep(plan, plan.values({}, {}), sources=images)
    groups = {owner: (tags, sorted(b.platform for b in built)) for owner, tags, built in merge.groups(RunRecord(project))}
    assert groups == {
        "light-cpu": (["example.com/app:light"], ["linux/amd64", "linux/arm64", "linux/s390x"]),
        "full-cpu": (["example.com/app:full"], ["linux/amd64"]),
    }


def test_workflow_builds_the_source_on_its_runner_and_attests_each_tag_once(project: Path) -> None:
    plan, _ = plan_and_problems(project)
    entries = [(e["variant"], e["platform"], e["runner"], e["python"]) for e in job_matrix(plan)["include"]]
    assert ("cpu", "linux/s390x", "ubuntu-24.04-s390x", "apt") in entries
    workflow = yaml.safe_load(generate_workflow(plan, "bakegen.yaml", None).workflow)
    merge_steps = [s.get("name", "") for job in workflow["jobs"].values() for s in job["steps"]]
    assert "Attest light-cpu" in merge_steps and not any("s390x" in name for name in merge_steps if name.startswith("Attest"))


@pytest.mark.docker
def test_buildx_print_matches_plan_json(project: Path, bakegen: Runner) -> None:
    if unavailable_reason():
        pytest.skip(unavailable_reason() or "")
    assert bakegen("render", cwd=project).returncode == 0
    raw = subprocess.run(["docker", "buildx", "bake", "--print"], cwd=project, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert raw.returncode == 0, raw.stderr
    assert bakegen("plan", "--json", cwd=project).stdout == raw.stdout
    printed = json.loads(raw.stdout)["target"]
    assert printed["light-cpu-s390x"]["target"] == "light-z" and printed["light-cpu-s390x"]["platforms"] == ["linux/s390x"]
    shutil.rmtree(project / ".bakegen", ignore_errors=True)
