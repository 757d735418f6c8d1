"""slices.py: per-platform builds and TAG-ARCH tags (pure)."""

from __future__ import annotations

from bakegen import slices
from bakegen.model import BuildPlan
from bakegen.planner import build_plan
from bakegen.spec import load_spec
from tests.conftest import LLAMA_SPEC


def llama() -> BuildPlan:
    plan, _ = build_plan(load_spec(LLAMA_SPEC))
    return plan


def test_for_platform_keeps_targets_that_build_it() -> None:
    plan = llama()
    arm = slices.for_platform(plan, "linux/arm64")
    assert [t.name for t in arm.targets] == ["full-cpu", "light-cpu", "server-cpu", "full-rocm", "light-rocm", "server-rocm"]
    assert all(t.platforms == ("linux/arm64",) for t in arm.targets)
    values = plan.values({"VERSION": "b1"}, environ={})
    # a per-platform slice keeps the final tags: it is pushed by digest, and only the merge tags it
    assert arm.resolved_tags(arm.targets[0], values) == ["ghcr.io/ggml-org/llama.cpp:full", "ghcr.io/ggml-org/llama.cpp:full-b1"]
    assert {g.name for g in arm.groups} == {"default", "cpu", "rocm", "full", "light", "server"}


def test_for_platform_keeps_tags() -> None:
    plan = llama()
    amd = slices.for_platform(plan, "linux/amd64")
    assert len(amd.targets) == 24  # every variant builds amd64, but not cpu's s390x source
    assert amd.targets[3].tags == next(t for t in plan.targets if t.name == amd.targets[3].name).tags


def test_for_native_narrows_only_multi_platform_targets() -> None:
    native = slices.for_native(llama(), "linux/arm64")
    platforms = {t.name: t.platforms for t in native.targets}
    assert platforms["full-cpu"] == ("linux/arm64",)
    assert platforms["full-cuda"] == ("linux/amd64",)


def test_platforms_of_in_first_seen_order() -> None:
    assert slices.platforms_of(llama().targets) == ["linux/amd64", "linux/arm64", "linux/s390x"]
