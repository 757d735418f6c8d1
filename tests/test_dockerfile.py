"""dockerfile.py and checks.py: stages and ARGs checked against the real Dockerfile."""

from __future__ import annotations

from pathlib import Path

from bakegen.checks import check_dockerfiles
from bakegen.dockerfile import parse_dockerfile
from bakegen.model import build_plan
from bakegen.spec import load_spec
from tests.conftest import MINIMAL_SPEC, write_spec

DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG BASE=scratch
FROM ${BASE} AS build
ARG CUDA_VERSION=12.4.0 \\
    OTHER
RUN echo hi
from --platform=$BUILDPLATFORM build as Full
FROM build AS server
"""


def test_parse_stages_and_args(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(DOCKERFILE)
    info = parse_dockerfile(path)
    assert info.stages == ("build", "full", "server")
    assert info.args == {"BASE", "CUDA_VERSION", "OTHER"}


def test_missing_stage_is_error_undeclared_arg_warning(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE.replace("FROM build AS server\n", "").replace("CUDA_VERSION=12.4.0", "X=1"))
    spec = load_spec(write_spec(tmp_path, MINIMAL_SPEC))
    plan, _ = build_plan(spec)
    problems = check_dockerfiles(spec, plan)
    errors = [str(p) for p in problems if p.severity == "error"]
    warnings = [str(p) for p in problems if p.severity == "warning"]
    assert errors == [
        f"{spec.path}:6:17: variants.cpu.dockerfile: Dockerfile has no stage 'server' (it defines: build, full)",
        f"{spec.path}:10:17: variants.cuda.dockerfile: Dockerfile has no stage 'server' (it defines: build, full)",
    ]
    assert warnings == [
        f"{spec.path}:11:12: warning: variants.cuda.args.CUDA_VERSION: ARG CUDA_VERSION is never declared in Dockerfile; the value will be ignored"
    ]


def test_missing_dockerfile_is_a_warning(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, MINIMAL_SPEC))
    plan, _ = build_plan(spec)
    [problem] = check_dockerfiles(spec, plan)
    assert problem.severity == "warning" and "does not exist" in problem.message
