"""dockerfile.py and checks.py: stages and ARGs checked against the real Dockerfile, read the way BuildKit reads it."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from bakegen.dockerfile import MAX_BYTES, DockerfileInfo, is_predefined, parse_dockerfile, parse_dockerfile_text
from bakegen.dockerfile_check import dockerfile_problems
from bakegen.errors import BakegenError
from bakegen.planner import build_plan
from bakegen.spec import load_spec
from tests.conftest import MINIMAL_SPEC, write_spec

FIXTURES = Path(__file__).parent / "fixtures" / "dockerfiles"

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


def fixture(name: str) -> DockerfileInfo:
    return parse_dockerfile(FIXTURES / name)


def test_parse_stages_and_args(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(DOCKERFILE)
    info = parse_dockerfile(path)
    assert info.stages == ("build", "full", "server")
    assert info.args == {"BASE", "CUDA_VERSION", "OTHER"}
    assert info == parse_dockerfile_text(DOCKERFILE)


@pytest.mark.parametrize(
    ("name", "stages"),
    [
        ("scope.Dockerfile", ("base", "full", "light")),
        ("escape.Dockerfile", ("windows", "other")),
        ("late-directive.Dockerfile", ("first", "second")),
        ("directives.Dockerfile", ("first", "second")),
        ("windows.Dockerfile", ("tools", "app")),
        ("heredoc.Dockerfile", ("build", "final")),
        ("realworld.Dockerfile", ("deps", "build-cpu", "build-cuda", "selected", "runtime", "docs")),
    ],
)
def test_stages(name: str, stages: tuple[str, ...]) -> None:
    assert fixture(name).stages == stages


@pytest.mark.parametrize(
    ("name", "stage", "reaching"),
    [
        # FROM <stage> and COPY --from=<index> pull in other stages' ARGs; global ARGs always count.
        ("scope.Dockerfile", "full", {"GLOBAL_ONLY", "BASE_ONLY", "UNNAMED", "FULL_ONLY"}),
        ("scope.Dockerfile", "BASE", {"GLOBAL_ONLY", "BASE_ONLY"}),
        # A blank line and a comment line inside a continuation do not end the ARG.
        ("scope.Dockerfile", "light", {"GLOBAL_ONLY", "LIGHT_ONLY", "LIGHT_TOO"}),
        ("scope.Dockerfile", "no-such-stage", {"GLOBAL_ONLY"}),
        # `# escape=` after a blank line is still a directive; a trailing backslash is then plain text.
        ("escape.Dockerfile", "windows", {"FIRST", "SECOND", "PATH_LIKE"}),
        ("escape.Dockerfile", "other", {"OTHER"}),
        # After a comment `# escape=` is a comment: backslash continues, a trailing backtick does not.
        ("late-directive.Dockerfile", "first", {"ONE", "TWO", "THREE"}),
        ("late-directive.Dockerfile", "second", {"FOUR"}),
        # `# syntax=` and `# check=` directives before `# escape=` do not hide it.
        ("directives.Dockerfile", "first", {"ONE", "TWO", "THREE"}),
        ("directives.Dockerfile", "second", {"FOUR"}),
        ("windows.Dockerfile", "tools", {"BASE", "TOOLS_VERSION", "INSTALL_DIR"}),
        ("windows.Dockerfile", "app", {"BASE", "APP_MODE", "TOOLS_VERSION", "INSTALL_DIR"}),
        # Heredoc bodies are not instructions; a JSON-form RUN opens no heredoc.
        ("heredoc.Dockerfile", "build", {"BUILD_ARG", "AFTER_JSON_RUN"}),
        ("heredoc.Dockerfile", "final", {"BUILD_ARG", "AFTER_JSON_RUN", "FINAL_ARG"}),
        (
            "realworld.Dockerfile",
            "build-cpu",  # RUN --mount=type=cache,from=deps
            {"TOOLCHAIN_IMAGE", "RUNTIME_IMAGE", "FLAVOR", "DEPS_MIRROR", "OPT_LEVEL"},
        ),
        (
            "realworld.Dockerfile",
            "build-cuda",
            {"TOOLCHAIN_IMAGE", "RUNTIME_IMAGE", "FLAVOR", "DEPS_MIRROR", "OPT_LEVEL", "CUDA_VERSION", "CUDA_ARCHS"},
        ),
        (
            "realworld.Dockerfile",
            "runtime",  # FROM build-${FLAVOR} resolves with the global default; COPY --from=3 is the unnamed stage
            {"TOOLCHAIN_IMAGE", "RUNTIME_IMAGE", "FLAVOR", "DEPS_MIRROR", "OPT_LEVEL", "STRIP", "LICENSES_URL", "APP_USER"},
        ),
        # COPY --from=<image> is not a stage.
        ("realworld.Dockerfile", "docs", {"TOOLCHAIN_IMAGE", "RUNTIME_IMAGE", "FLAVOR", "DOCS_THEME"}),
    ],
)
def test_args_reaching(name: str, stage: str, reaching: set[str]) -> None:
    assert fixture(name).args_reaching(stage) == reaching


def test_dependencies_and_declares() -> None:
    info = fixture("realworld.Dockerfile")
    assert info.dependencies("runtime") == ("deps", "build-cpu", "3", "selected", "runtime")
    assert info.declares("runtime", "APP_USER") and info.declares("runtime", "DEPS_MIRROR")
    assert not info.declares("runtime", "CUDA_VERSION")  # only build-cuda declares it, and runtime does not need it
    assert info.declares("build-cuda", "CUDA_VERSION")
    assert info.args >= {"CUDA_VERSION", "DOCS_THEME", "FLAVOR"}  # the old attribute: every declared ARG


@pytest.mark.parametrize(
    "arg",
    [
        *("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy"),
        *("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "Http_Proxy"),
        *("BUILDKIT_INLINE_CACHE", "BUILDKIT_SYNTAX", "BUILDKIT_CONTEXT_KEEP_GIT_DIR", "BUILDKIT_MULTI_PLATFORM"),
        *("BUILDKIT_SANDBOX_HOSTNAME", "BUILDKIT_CACHE_MOUNT_NS", "SOURCE_DATE_EPOCH"),
        *("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT"),
    ],
)
def test_predefined_args_are_declared_everywhere(arg: str) -> None:
    info = fixture("scope.Dockerfile")
    assert is_predefined(arg) and info.declares("light", arg) and info.declares("no-such-stage", arg)


@pytest.mark.parametrize("arg", ["PROXY", "HTTP_PROXY_URL", "buildkit_inline_cache", "BUILDKIT", "TARGETARCHS", "FULL_ONLY"])
def test_other_args_are_not_predefined(arg: str) -> None:
    assert not is_predefined(arg) and not fixture("scope.Dockerfile").declares("light", arg)


@pytest.mark.parametrize(
    ("content", "stages", "args"),
    [
        (b"", (), set()),
        (b"\xef\xbb\xbf# escape=`\nFROM scratch AS a\nARG X `\n  Y\n", ("a",), {"X", "Y"}),  # BOM before a directive
        (b"FROM scratch AS a\nARG \xff\xfe=1 OK\x00\nARG \x00NUL\n", ("a",), {"\ufffd\ufffd", "OK\x00", "\x00NUL"}),
        (b"FROM scratch AS a\nARG X=y\\\\\nFROM scratch AS b\n", ("a", "b"), {"X"}),  # an escaped escape ends the line
        (b"FROM scratch AS a\r\nARG CRLF \\\r\n  NEXT\r\n", ("a",), {"CRLF", "NEXT"}),
        (b"FROM scratch AS a\nARG LAST \\", ("a",), {"LAST"}),  # unterminated continuation
        (b"FROM scratch AS a\nARG LAST \\\n\n# only blank and comment lines follow\n", ("a",), {"LAST"}),
        (b"FROM scratch AS a\nRUN <<EOF\nFROM x AS b\nARG IN_BODY\n", ("a",), set()),  # unterminated heredoc
        (b"FROM scratch AS a\nRUN <<\nARG AFTER\n", ("a",), {"AFTER"}),  # `<<` with no word opens no heredoc
        (b"FROM scratch AS a\nCOPY --from=\xc2\xb2 --from=" + b"9" * 5000 + b" / /\n", ("a",), set()),  # not stage indexes
        (b"FROM\nARG\nFROM a AS\nFROM scratch as B extra\n", ("b",), set()),
        (b"FROM scratch AS a\nARG " + b"X" * (MAX_BYTES + 10) + b"\nFROM scratch AS late\n", ("a",), {"X" * (MAX_BYTES - 22)}),
    ],
)
def test_any_bytes_parse(tmp_path: Path, content: bytes, stages: tuple[str, ...], args: set[str]) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(content)
    info = parse_dockerfile(path)
    assert (info.stages, set(info.args)) == (stages, args)
    assert set().union(*(info.args_reaching(stage) for stage in stages)) == args  # no global ARGs in these files


@pytest.mark.parametrize(
    "line",
    [
        "RUN " + '"' * 300_000 + " <<" * 300_000,
        "RUN --mount=type=cache,from=" * 35_000 + " <<EOF",
        "COPY " + "--f " * 250_000,
        "ARG " + "'" * 1_000_000,
        "FROM " + "${" * 500_000,
    ],
)
def test_pathological_lines_are_fast(line: str) -> None:
    """Lines of about MAX_BYTES: linear work takes a fraction of a second, quadratic work minutes."""
    started = time.monotonic()
    parse_dockerfile_text("FROM scratch AS a\n" + line + "\n")
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    "text",
    [
        "FROM scratch AS s0\n" + "".join(f"ARG A{n}\n" for n in range(40_000)),
        "FROM scratch AS s0\n" + "".join(f"FROM s{n} AS s{n + 1}\nARG A{n}\nCOPY --from={n} / /\n" for n in range(8_000)),
    ],
)
def test_many_instructions_are_fast(text: str) -> None:
    """Work per instruction must not grow with the file (it did, when each ARG line copied its stage's set)."""
    started = time.monotonic()
    info = parse_dockerfile_text(text)
    assert len(info.args_reaching(info.stages[-1])) in (40_000, 8_000) and time.monotonic() - started < 1.5


def test_reading_stops_at_max_bytes(tmp_path: Path) -> None:
    """Two-byte characters: the cap counts bytes read from the file, and characters of text handed in."""
    late = "\nFROM scratch AS late\n"
    path = tmp_path / "Dockerfile"
    path.write_text("FROM scratch AS a\nARG X=" + "é" * (MAX_BYTES // 2 + 100) + late, encoding="utf-8")
    assert parse_dockerfile(path).stages == ("a",)
    assert parse_dockerfile_text("FROM scratch AS a\n# " + "x" * MAX_BYTES + late).stages == ("a",)
    assert parse_dockerfile_text("FROM scratch AS a\n# " + "x" * (MAX_BYTES - 100) + late).stages == ("a", "late")


def test_unreadable_dockerfile_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(BakegenError) as caught:
        parse_dockerfile(tmp_path)  # a directory
    assert [str(d) for d in caught.value.diagnostics] == [f"{tmp_path}: cannot read the Dockerfile: Is a directory"]


@pytest.mark.docker
@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("scope.Dockerfile", "full"),
        ("scope.Dockerfile", "light"),
        ("escape.Dockerfile", "windows"),
        ("late-directive.Dockerfile", "first"),
    ],
)
def test_buildkit_consumes_what_args_reaching_says(tmp_path: Path, name: str, target: str) -> None:
    """Build the fixture for real with every ARG set to "set": each WORKDIR /NAME-$NAME in the output shows
    whether the build saw the value. (Global ARGs are consumed by FROM lines, which show nothing here.)"""
    info = fixture(name)
    shown = re.findall(r"^WORKDIR /(\w+)-\$", (FIXTURES / name).read_text(), re.MULTILINE)  # read apart from the parser under test
    build_args = [arg for shown_arg in shown for arg in ("--build-arg", f"{shown_arg}=set")]
    out = tmp_path / "out"
    command = ["docker", "buildx", "build", "-q", "-f", str(FIXTURES / name), "--target", target, *build_args]
    subprocess.run([*command, "-o", f"type=local,dest={out}", str(tmp_path)], check=True, capture_output=True, timeout=300)
    seen = {entry.name.removesuffix("-set") for entry in out.iterdir() if entry.name.endswith("-set")}
    assert seen == info.args_reaching(target) - info.global_args


def test_missing_stage_is_error_undeclared_arg_warning(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE.replace("FROM build AS server\n", "").replace("CUDA_VERSION=12.4.0", "X=1"))
    spec = load_spec(write_spec(tmp_path, MINIMAL_SPEC))
    plan, _ = build_plan(spec)
    problems = dockerfile_problems(spec, plan)
    errors = [str(p) for p in problems if p.severity == "error"]
    warnings = [str(p) for p in problems if p.severity == "warning"]
    assert errors == [
        f"{spec.path}:6:17: variants.cpu.dockerfile: Dockerfile has no stage 'server' (it defines: build, full)",
        f"{spec.path}:10:17: variants.cuda.dockerfile: Dockerfile has no stage 'server' (it defines: build, full)",
    ]
    assert warnings == [
        f"{spec.path}:11:12: warning: variants.cuda.args.CUDA_VERSION: ARG CUDA_VERSION is never declared in Dockerfile for the stages built; the value will be ignored"
    ]


def test_missing_dockerfile_is_a_warning(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, MINIMAL_SPEC))
    plan, _ = build_plan(spec)
    [problem] = dockerfile_problems(spec, plan)
    assert problem.severity == "warning" and "Dockerfiles not found beside the spec: Dockerfile" in problem.message
