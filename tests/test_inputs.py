"""inputs.py: the inputs digest changes with what a build reads, and with nothing else."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bakegen import inputs
from bakegen.errors import BakegenError
from bakegen.inputs import (
    _CHUNK,
    base_image_references,
    context_files,
    dockerignore_patterns,
    inputs_digest,
    inputs_document,
    platform_args,
)
from tests.conftest import ROOT

DOCKERFILE = "FROM scratch AS build\nCOPY . /src\nFROM build AS light\n"
FILES = {
    "app/main.py": "print('hello')\n",
    "app/run.sh": "#!/bin/sh\nexec python main.py\n",
    "data/table.csv": "a,b\n1,2\n",
    "ignored/secret.txt": "not in the context\n",
    "ignored/keep.txt": "re-included by an exception\n",
    "build.log": "ignored by *.log\n",
    "README": "visible\n",
}
DOCKERIGNORE = "# comment\nignored/\n!ignored/keep.txt\n*.log\n"
BASES = {"scratch": "scratch"}


def make_context(root: Path, order: list[str] | None = None) -> Path:
    """A context with a Dockerfile, an ignore file, an executable script and a symlink; `order` is the
    order files are created in."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / ".dockerignore").write_text(DOCKERIGNORE)
    for name in order or list(FILES):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(FILES[name])
        path.chmod(0o644)
    (root / "app" / "run.sh").chmod(0o755)
    (root / "latest").symlink_to("app/main.py")
    return root


def digest(context: Path, **overrides: object) -> str:
    parameters: dict[str, object] = {
        "dockerfile": context / "Dockerfile",
        "context": context,
        "stage": "light",
        "args": {"CUDA_VERSION": "12.4.0"},
        "platform": "linux/amd64",
        "base_images": BASES,
    }
    parameters.update(overrides)
    return inputs_digest(**parameters)  # type: ignore[arg-type]


@pytest.fixture
def context(tmp_path: Path) -> Path:
    return make_context(tmp_path / "ctx")


def test_the_visible_files_follow_the_ignore_file(context: Path) -> None:
    entries = {entry.path: entry for entry in context_files(context, context / "Dockerfile")}
    assert sorted(entries) == [
        ".dockerignore",
        "Dockerfile",
        "README",
        "app/main.py",
        "app/run.sh",
        "data/table.csv",
        "ignored/keep.txt",
        "latest",
    ]
    assert entries["app/run.sh"].executable and not entries["app/main.py"].executable
    assert entries["app/main.py"].content == hashlib.sha256(FILES["app/main.py"].encode()).hexdigest()
    assert (entries["latest"].kind, entries["latest"].content) == ("symlink", "app/main.py")


def test_digest_is_sha256_hex_of_canonical_document(context: Path) -> None:
    document = inputs_document(
        dockerfile=context / "Dockerfile", context=context, stage="light", args={}, platform="linux/amd64", base_images=BASES
    )
    expected = hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert digest(context, args={}) == expected
    assert document["format"] == "bakegen-inputs/1"
    assert document["context"] == {"entries": 8, "sha256": document["context"]["sha256"]}  # type: ignore[index]


def _edit(name: str, text: str) -> Callable[[Path], object]:
    return lambda root: (root / name).write_text(text)


def _relink(name: str, target: str) -> Callable[[Path], object]:
    def relink(root: Path) -> None:
        (root / name).unlink()
        (root / name).symlink_to(target)

    return relink


CHANGES: dict[str, Callable[[Path], object]] = {
    "Dockerfile": _edit("Dockerfile", DOCKERFILE + "LABEL x=1\n"),
    "context file": _edit("app/main.py", "print('bye')\n"),
    "re-included file": _edit("ignored/keep.txt", "changed\n"),
    "new file": _edit("app/new.py", ""),
    "removed file": lambda root: (root / "data" / "table.csv").unlink(),
    "renamed file": lambda root: (root / "data" / "table.csv").rename(root / "data" / "table2.csv"),
    ".dockerignore": _edit(".dockerignore", DOCKERIGNORE + "README\n"),
    "exec bit set": lambda root: (root / "app" / "main.py").chmod(0o755),
    "exec bit cleared": lambda root: (root / "app" / "run.sh").chmod(0o644),
    "symlink target": _relink("latest", "app/run.sh"),
    "file becomes symlink": _relink("README", "app/main.py"),
    "Dockerfile-specific ignore file": _edit("Dockerfile.dockerignore", "ignored/\n"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_to_what_the_build_reads_changes_the_digest(context: Path, change: str) -> None:
    before = digest(context)
    CHANGES[change](context)
    assert digest(context) != before


NON_CHANGES: dict[str, Callable[[Path], object]] = {
    "ignored file": _edit("ignored/secret.txt", "changed\n"),
    "new ignored file": _edit("ignored/other.txt", "new\n"),
    "ignored by pattern": _edit("build.log", "changed\n"),
    "mtime": lambda root: os.utime(root / "app" / "main.py", (1, 1)),
    "non-exec permission bits": lambda root: (root / "app" / "main.py").chmod(0o600),
    "empty directory": lambda root: (root / "empty" / "deeper").mkdir(parents=True),
}


@pytest.mark.parametrize("change", list(NON_CHANGES))
def test_what_the_build_cannot_see_leaves_the_digest(context: Path, change: str) -> None:
    before = digest(context)
    NON_CHANGES[change](context)
    assert digest(context) == before


@pytest.mark.parametrize(
    "override",
    [
        {"args": {"CUDA_VERSION": "12.6.0"}},
        {"args": {"CUDA_VERSION": "12.4.0", "EXTRA": ""}},
        {"args": {}},
        {"stage": "build"},
        {"platform": "linux/arm64"},
        {"base_images": {"scratch": "scratch", "alpine:3.19": "sha256:" + "a" * 64}},
        {"base_images": {"alpine:3.19": "sha256:" + "b" * 64}},
    ],
    ids=["arg value", "arg added", "args removed", "stage", "platform", "base image added", "base image identity"],
)
def test_a_change_of_parameters_changes_the_digest(context: Path, override: dict[str, object]) -> None:
    assert digest(context, **override) != digest(context)


def test_stage_names_compare_without_case_as_docker_does(context: Path) -> None:
    assert digest(context, stage="LIGHT") == digest(context, stage="light")


def test_location_creation_order_and_listing_order_do_not_matter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = digest(make_context(tmp_path / "one"))
    second_root = make_context(tmp_path / "elsewhere" / "two", order=list(reversed(FILES)))
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: sorted(real_listdir(path), reverse=True))
    assert digest(second_root) == first


def test_args_and_base_images_order_does_not_matter(context: Path) -> None:
    bases = {"a:1": "sha256:1", "b:2": "sha256:2"}
    one = digest(context, args={"A": "1", "B": "2"}, base_images=bases)
    assert one == digest(context, args={"B": "2", "A": "1"}, base_images=dict(reversed(bases.items())))


def test_digest_is_stable_across_processes(context: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from bakegen.inputs import inputs_digest; c = Path(sys.argv[1]); "
        "print(inputs_digest(dockerfile=c / 'Dockerfile', context=c, stage='light', args={'CUDA_VERSION': '12.4.0', 'B': 'x'}, "
        "platform='linux/amd64', base_images={'scratch': 'scratch', 'alpine': 'sha256:1'}))"
    )
    answers = set()
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        result = subprocess.run([sys.executable, "-c", script, str(context)], capture_output=True, text=True, env=env, check=True)
        answers.add(result.stdout.strip())
    assert answers == {digest(context, args={"CUDA_VERSION": "12.4.0", "B": "x"}, base_images={"scratch": "scratch", "alpine": "sha256:1"})}


def test_large_files_are_streamed_and_hashed_whole(context: Path) -> None:
    content = os.urandom(_CHUNK * 2 + 123)
    (context / "data" / "big.bin").write_bytes(content)
    entries = {entry.path: entry for entry in context_files(context, context / "Dockerfile")}
    assert entries["data/big.bin"].content == hashlib.sha256(content).hexdigest()


def test_special_files_are_entries_not_skipped_and_never_read(context: Path) -> None:
    os.mkfifo(context / "pipe")  # reading it would block
    before = {entry.path: entry for entry in context_files(context, context / "Dockerfile")}
    assert (before["pipe"].kind, before["pipe"].content) == ("other", "fifo")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_an_error_not_skipped(context: Path) -> None:
    (context / "README").chmod(0)
    with pytest.raises(BakegenError, match="README: cannot read"):
        digest(context)


def test_a_read_error_is_an_error_naming_the_file(context: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: str, size: int | None = None) -> str:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(inputs, "_file_sha256", refuse)
    with pytest.raises(BakegenError, match=r"^/\S+/ctx/\S+: cannot read a file of the build context: Permission denied$"):
        context_files(context, context / "Dockerfile")


def test_a_context_that_is_not_a_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BakegenError, match=r"^/\S+/missing: the build context is not a directory$"):
        digest(tmp_path / "missing", dockerfile=tmp_path / "Dockerfile")


def test_a_missing_dockerfile_is_an_error(context: Path) -> None:
    with pytest.raises(BakegenError, match=r"^/\S+/ctx/nope.Dockerfile: cannot read it: No such file or directory$"):
        digest(context, dockerfile=context / "nope.Dockerfile")


def test_dockerfile_and_ignore_file_are_always_counted(context: Path) -> None:
    (context / ".dockerignore").write_text("*\n")
    assert [entry.path for entry in context_files(context, context / "Dockerfile")] == [".dockerignore", "Dockerfile"]


def test_dockerfile_outside_the_context(tmp_path: Path, context: Path) -> None:
    outside = tmp_path / "docker" / "app.Dockerfile"
    outside.parent.mkdir()
    outside.write_text(DOCKERFILE)
    (context / ".dockerignore").write_text(DOCKERIGNORE + "Dockerfile\n")
    # The context's own Dockerfile is an ordinary, here ignored, file when the build uses another one.
    assert "Dockerfile" in [entry.path for entry in context_files(context, context / "Dockerfile")]
    assert "Dockerfile" not in [entry.path for entry in context_files(context, outside)]
    before = digest(context, dockerfile=outside)
    outside.write_text(DOCKERFILE + "LABEL y=2\n")
    assert digest(context, dockerfile=outside) != before
    # Its own ignore file, beside it and outside the context, counts too.
    own_ignore = outside.with_name("app.Dockerfile.dockerignore")
    own_ignore.write_text("# only a comment\n")
    before = digest(context, dockerfile=outside)
    own_ignore.write_text("# another comment\n")
    assert digest(context, dockerfile=outside) != before


def test_dockerfile_specific_ignore_file_wins(context: Path) -> None:
    (context / "Dockerfile.dockerignore").write_text("data/\n")
    paths = {entry.path for entry in context_files(context, context / "Dockerfile")}
    assert "data/table.csv" not in paths and "ignored/secret.txt" in paths and "build.log" in paths


def test_ignore_file_lines_are_read_as_docker_reads_them() -> None:
    text = "\ufeff# comment\n  \n  spaced  \n  # not a comment: only column 1 starts one\n! keep\n!nested/x\r\n"
    assert dockerignore_patterns(text) == ["spaced", "# not a comment: only column 1 starts one", "!keep", "!nested/x"]


# --- base_image_references --------------------------------------------------------------------------------------------

MULTI_STAGE = """\
# syntax=docker/dockerfile:1
ARG UBUNTU_VERSION=22.04
ARG CUDA_VERSION=12.4.0
ARG BASE_CUDA=nvidia/cuda:${CUDA_VERSION}-devel-ubuntu${UBUNTU_VERSION}
FROM --platform=$BUILDPLATFORM ${BASE_CUDA} AS build
ARG TOOLS=busybox:1.36
RUN --mount=type=cache,target=/root/.cache \\
    --mount=type=bind,from=${TOOLS},source=/bin,target=/tools \\
    make
RUN cat <<EOF > /notes
a heredoc's lines are not instructions
COPY --from=heredoc-body:1 / /
EOF
COPY <<-"END" /more
	line one
	COPY --from=heredoc-body:2 / /
	END
FROM ubuntu:$UBUNTU_VERSION AS base
FROM base AS full
COPY --from=build /app /app
FROM scratch AS light
COPY --from=0 /app/bin /bin
COPY --from=alpine:3.19 /etc/ssl /etc/ssl
FROM unused:1 AS unused
"""


@pytest.mark.parametrize(
    ("stage", "args", "expected"),
    [
        ("full", {}, ["nvidia/cuda:12.4.0-devel-ubuntu22.04", "busybox:1.36", "ubuntu:22.04"]),
        ("light", {}, ["nvidia/cuda:12.4.0-devel-ubuntu22.04", "busybox:1.36", "scratch", "alpine:3.19"]),
        ("base", {"UBUNTU_VERSION": "24.04"}, ["ubuntu:24.04"]),
        ("full", {"CUDA_VERSION": "12.6.0", "TOOLS": "toybox:1"}, ["nvidia/cuda:12.6.0-devel-ubuntu22.04", "toybox:1", "ubuntu:22.04"]),
        ("unused", {}, ["unused:1"]),
        ("", {}, ["unused:1"]),
    ],
)
def test_base_images_of_the_stages_a_target_depends_on(stage: str, args: dict[str, str], expected: list[str]) -> None:
    assert base_image_references(MULTI_STAGE, stage, args) == expected


@pytest.mark.parametrize(
    ("dockerfile", "args", "expected"),
    [
        ("ARG A=x\nFROM img:${A}\n", {}, "img:x"),
        ("ARG A=x\nFROM img:${A}\n", {"A": "y"}, "img:y"),
        ("FROM img:${A}\n", {"A": "y"}, "img:"),  # an ARG not declared before FROM is not seen by FROM
        ('ARG A="quoted value"\nFROM img:${A%.*}\n', {}, "error"),
        ('ARG A="quoted value"\nFROM "img:${A}"\n', {}, "img:quoted value"),
        ("ARG A\nFROM img:${A:-fallback}\n", {}, "img:fallback"),
        ("ARG A=\nFROM img:${A:-fallback}\n", {}, "img:fallback"),
        ("ARG A=\nFROM img:${A-fallback}\n", {}, "img:"),
        ("ARG A=set\nFROM img:${A:+other}\n", {}, "img:other"),
        ("ARG A=x B=${A}-y\nFROM img:$B\n", {}, "img:x-y"),
        ("ARG A\nFROM img:${A:-${B:-deep}}\n", {}, "img:deep"),
        ("FROM img:$TARGETARCH\n", {}, "img:arm64"),
        ("FROM img:\\$literal\n", {}, "img:$literal"),
        ("# escape=`\nFROM img:`\n1 AS x\n", {}, "img:1"),
        ("FROM \\\n# comment inside a continuation\n  img:2 \\\n  AS x\n", {}, "img:2"),
        ("from IMG:3 as X\n", {}, "IMG:3"),
    ],
)
def test_from_variables_expand_as_buildkit_expands_them(dockerfile: str, args: dict[str, str], expected: str) -> None:
    if expected == "error":
        with pytest.raises(BakegenError, match=r"^Dockerfile:2:1: unsupported variable substitution"):
            base_image_references(dockerfile, "", args, platform="linux/arm64")
    else:
        assert base_image_references(dockerfile, "", args, platform="linux/arm64") == [expected]


def test_from_names_earlier_stages_only() -> None:
    dockerfile = "FROM later AS first\nFROM alpine AS later\n"
    assert base_image_references(dockerfile, "first", {}) == ["later"]


def test_copy_from_sees_the_stage_args_not_the_global_ones() -> None:
    dockerfile = "ARG IMG=global:1\nFROM scratch\nARG IMG\nCOPY --from=$IMG / /\nFROM scratch AS second\nCOPY --from=${IMG:-none:0} / /\n"
    assert base_image_references(dockerfile, "", {"IMG": "given:2"}) == ["scratch", "none:0"]
    uses_first = dockerfile.replace("AS second", "AS second\nCOPY --from=0 / /")
    assert base_image_references(uses_first, "", {}) == ["scratch", "global:1", "none:0"]
    assert base_image_references(uses_first, "", {"IMG": "given:2"}) == ["scratch", "given:2", "none:0"]


def test_platform_args() -> None:
    assert platform_args("linux/arm/v7", "linux/amd64") == {
        "TARGETPLATFORM": "linux/arm/v7",
        "TARGETOS": "linux",
        "TARGETARCH": "arm",
        "TARGETVARIANT": "v7",
        "BUILDPLATFORM": "linux/amd64",
        "BUILDOS": "linux",
        "BUILDARCH": "amd64",
        "BUILDVARIANT": "",
    }


def test_unknown_stage_is_one_line_naming_the_stages() -> None:
    with pytest.raises(BakegenError) as raised:
        base_image_references(MULTI_STAGE, "server", {}, source="app/Dockerfile")
    assert str(raised.value) == "app/Dockerfile: no stage 'server' (stages: build, base, full, light, unused)"


def test_continuation_lines_keep_their_indentation_as_in_buildkit() -> None:
    # BuildKit joins `FROM img:\` and `  2` into `FROM img:  2`: two words, an error (checked against buildx 0.13).
    with pytest.raises(BakegenError, match=r"^Dockerfile:1:1: FROM needs IMAGE \[AS NAME\], got 'img:  2'$"):
        base_image_references("FROM img:\\\n  2\n", "", {})


def test_a_from_that_expands_to_nothing_is_an_error() -> None:
    with pytest.raises(BakegenError, match=r"^Dockerfile:2:1: FROM \$\{BASE\} names no image"):
        base_image_references("ARG BASE\nFROM ${BASE}\n", "", {})


# --- against the real builder -----------------------------------------------------------------------------------------


@pytest.mark.docker
def test_the_files_counted_are_the_files_buildkit_sends(tmp_path: Path) -> None:
    """docker-py's matching against the builder's own: COPY the whole context out and compare."""
    context = make_context(tmp_path / "ctx")
    (context / ".dockerignore").write_text(DOCKERIGNORE + "**/*.csv\n!data/keep.csv\ndeep/*/x\n")
    for name in ("data/keep.csv", "deep/a/x", "deep/a/y", "deep/b/c/x"):
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_text(name)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    out = tmp_path / "out"
    subprocess.run(
        ["docker", "buildx", "build", "--progress", "quiet", "--output", f"type=local,dest={out}", str(context)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    sent = sorted(str(p.relative_to(out)) for p in out.rglob("*") if not p.is_dir() or p.is_symlink())
    counted = [entry.path for entry in context_files(context, context / "Dockerfile")]
    assert counted == sent
    exported = out / "app" / "run.sh"
    assert stat.S_IMODE(exported.stat().st_mode) & stat.S_IXUSR  # the exec bit does reach the image
    shutil.rmtree(out)
