"""planner.py: spec -> BuildPlan, and the semantic checks the schema cannot make."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakegen.model import BuildPlan, UnknownSelection, UnknownVariable
from bakegen.planner import build_plan
from bakegen.spec import load_spec
from bakegen.template import Text, Var
from tests.conftest import LLAMA_SPEC, MINIMAL_SPEC, write_spec


def plan_of(path: Path) -> BuildPlan:
    plan, problems = build_plan(load_spec(path))
    assert [p for p in problems if p.severity == "error"] == []
    return plan


def problems_of(tmp_path: Path, text: str) -> list[str]:
    _, problems = build_plan(load_spec(write_spec(tmp_path, text)))
    return [str(p) for p in problems]


def test_llama_example_has_todays_images() -> None:
    """The seed's twelve (cpu, cuda, rocm, musa), and cuda13, vulkan, intel, openvino, and s390x in the cpu lists."""
    plan = plan_of(LLAMA_SPEC)
    values = plan.values({}, environ={})
    tags = {t.name: plan.resolved_tags(t, values) for t in plan.targets}
    repo = "ghcr.io/ggml-org/llama.cpp"
    suffixes = ("", "-cuda", "-cuda13", "-rocm", "-musa", "-vulkan", "-intel", "-openvino")
    expected = {f"{stage}{suffix}" for stage in ("full", "light", "server") for suffix in suffixes}
    assert {tag.removeprefix(repo + ":") for ts in tags.values() for tag in ts} == expected
    assert len({t.tag_owner for t in plan.targets}) == 24 and len(plan.targets) == 27
    platforms = {t.name: t.platforms for t in plan.targets}
    assert platforms["server-cpu"] == platforms["light-rocm"] == ("linux/amd64", "linux/arm64")
    assert platforms["server-cpu-s390x"] == ("linux/s390x",)
    cuda13 = next(t for t in plan.targets if t.name == "full-cuda13")
    assert dict(cuda13.args)["CUDA_VERSION"] == (Var("CUDA13_VERSION"),) and values["CUDA13_VERSION"] == "13.0.0"
    assert platforms["full-cuda"] == platforms["server-musa"] == ("linux/amd64",)
    assert values["CUDA_VERSION"] == "12.4.0" and values["CUDA_DOCKER_ARCH"] == "default" and values["MUSA_VERSION"] == "rc3.1.1"
    cuda = next(t for t in plan.targets if t.name == "full-cuda")
    assert dict(cuda.args) == {"CUDA_DOCKER_ARCH": (Var("CUDA_DOCKER_ARCH"),), "CUDA_VERSION": (Var("CUDA_VERSION"),)}


def test_version_tag_only_when_version_set() -> None:
    plan = plan_of(LLAMA_SPEC)
    target = next(t for t in plan.targets if t.name == "server-cuda")
    assert plan.resolved_tags(target, plan.values({}, environ={})) == ["ghcr.io/ggml-org/llama.cpp:server-cuda"]
    values = plan.values({"VERSION": "b4567", "REPO": "local/llama.cpp"}, environ={})
    assert plan.resolved_tags(target, values) == ["local/llama.cpp:server-cuda", "local/llama.cpp:server-cuda-b4567"]


def test_environment_then_var_override_defaults() -> None:
    plan = plan_of(LLAMA_SPEC)
    assert plan.values({}, environ={"CUDA_VERSION": "12.6.0"})["CUDA_VERSION"] == "12.6.0"
    assert plan.values({"CUDA_VERSION": "13.0.0"}, environ={"CUDA_VERSION": "12.6.0"})["CUDA_VERSION"] == "13.0.0"
    with pytest.raises(UnknownVariable) as unknown:
        plan.values({"NOPE": "1"}, environ={})
    assert unknown.value.name == "NOPE" and "CUDA_VERSION" in unknown.value.known


def test_aliases_tag_the_same_target(tmp_path: Path) -> None:
    text = MINIMAL_SPEC.replace('    args: {CUDA_VERSION: "12.4.0"}', '    aliases: [-cuda12]\n    args: {CUDA_VERSION: "12.4.0"}')
    plan = plan_of(write_spec(tmp_path, text))
    target = next(t for t in plan.targets if t.name == "server-cuda")
    assert plan.resolved_tags(target, plan.values({}, environ={})) == ["example.com/app:server-cuda", "example.com/app:server-cuda12"]


def test_groups_per_variant_and_stage() -> None:
    plan = plan_of(LLAMA_SPEC)
    groups = {g.name: g.targets for g in plan.groups}
    variants = ["cpu", "cuda", "cuda13", "rocm", "musa", "vulkan", "intel", "openvino"]
    assert list(groups) == ["default", *variants, "full", "light", "server"]
    assert groups["cuda"] == ("full-cuda", "light-cuda", "server-cuda")
    assert groups["server"] == ("server-cpu", "server-cpu-s390x", *(f"server-{v}" for v in variants[1:]))
    chosen = [t.name for t in plan.select(["server", "full-cpu"])]
    assert chosen == ["full-cpu", "full-cpu-s390x", "server-cpu", "server-cpu-s390x", *(f"server-{v}" for v in variants[1:])]
    with pytest.raises(UnknownSelection) as unknown:
        plan.select(["nope"])
    assert unknown.value.name == "nope" and "cuda" in unknown.value.groups


def test_two_variants_same_arg_different_defaults(tmp_path: Path) -> None:
    text = MINIMAL_SPEC + '  cuda13:\n    dockerfile: Dockerfile\n    args: {CUDA_VERSION: "13.0.1"}\n'
    [problem] = problems_of(tmp_path, text)
    assert ":14:" in problem and "variants.cuda13.args.CUDA_VERSION: bake variable CUDA_VERSION already has the default '12.4.0'" in problem
    assert "variable: CUDA13_CUDA_VERSION" in problem
    fixed = MINIMAL_SPEC + '  cuda13:\n    dockerfile: Dockerfile\n    args: {CUDA_VERSION: {value: "13.0.1", variable: CUDA13_VERSION}}\n'
    plan = plan_of(write_spec(tmp_path, fixed))
    values = plan.values({}, environ={"CUDA13_VERSION": "13.1.0"})
    args = {t.name: {k: "".join(values[p.name] if isinstance(p, Var) else p.value for p in v) for k, v in t.args} for t in plan.targets}
    assert args["full-cuda"] == {"CUDA_VERSION": "12.4.0"} and args["full-cuda13"] == {"CUDA_VERSION": "13.1.0"}


def test_fixed_arg_is_not_a_variable(tmp_path: Path) -> None:
    plan = plan_of(write_spec(tmp_path, MINIMAL_SPEC + "args: {GGML_NATIVE: {value: 'OFF', variable: null}}\n"))
    assert "GGML_NATIVE" not in {v.name for v in plan.variables}
    assert dict(plan.targets[0].args)["GGML_NATIVE"] == (Text("OFF"),)


def test_duplicate_tags_across_targets(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, MINIMAL_SPEC + "tags: ['{variant}']\n")
    assert any("tag {REPO}:cpu is given to both full-cpu and server-cpu" in p for p in problems)


def test_unknown_placeholder_and_bad_brace(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, MINIMAL_SPEC + "tags: ['{stage}-{VERSON}', '{stage']\n")
    assert any("tags[0]: unknown placeholder {VERSON}" in p and "{REPO}" in p for p in problems)
    assert any("tags[1]: bad template '{stage'" in p for p in problems)


def test_invalid_platforms(tmp_path: Path) -> None:
    text = MINIMAL_SPEC.replace("[linux/amd64, linux/arm64]", "[linux/amd46, plan9/amd64, linux/arm/v9]")
    problems = problems_of(tmp_path, text)
    assert any("platforms[0]: unknown architecture 'amd46'" in p for p in problems)
    assert any("platforms[1]: unknown OS 'plan9'" in p for p in problems)
    assert any("platforms[2]: unknown variant 'v9' for arm" in p for p in problems)


def test_non_nfc_strings_are_rejected(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, MINIMAL_SPEC + 'labels: {note: "cafe\\u0301"}\n')
    [problem] = problems
    assert "labels.note: 'cafe\u0301' is not in Unicode NFC form; buildx would change it to 'caf\u00e9'" in problem


def test_variant_stage_outside_top_level_stages(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, MINIMAL_SPEC.replace('    suffix: ""\n', '    suffix: ""\n    stages: [full, debug]\n'))
    assert any("variants.cpu.stages[1]: stage 'debug' is not in the top-level stages" in p for p in problems)


def test_stage_and_variant_with_one_name(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, MINIMAL_SPEC.replace("stages: [full, server]", "stages: [full, cpu]"))
    assert any("'cpu' is both a stage and a variant" in p for p in problems)
