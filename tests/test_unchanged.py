"""unchanged.py: images published with this run's inputs digest are not built, not pushed, and say so."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from bakegen.inputs import INPUTS_LABEL
from bakegen.model import Target
from bakegen.planner import build_plan
from bakegen.spec import load_spec
from bakegen.template import Text, Var
from bakegen.unchanged import build_args, build_settings, label_value, target_inputs_digest
from tests.conftest import REGISTRY_STORAGE, Runner, registry_tags, remove_images, write_spec

DOCKERFILE = """\
FROM scratch AS base
ARG TARGETARCH
ADD rootfs/${TARGETARCH}.tar /
COPY app/ /app/
FROM base AS full
ARG FLAVOUR=plain
LABEL stage=full flavour=$FLAVOUR
FROM base AS light
LABEL stage=light
"""

SPEC = """\
version: 1
image: {repository: localhost:5000/bakegen-unchanged-unused}
variables:
  VERSION: {default: ""}
stages: [full, light]
tags: ["{stage}{suffix}", "{stage}{suffix}-{VERSION}"]
variants:
  a: {dockerfile: a.Dockerfile, suffix: "", platforms: [linux/amd64, linux/arm64]}
  b: {dockerfile: b.Dockerfile, platforms: [linux/amd64], args: {FLAVOUR: spicy}}
"""


def project(root: Path, rootfs: Path | None = None) -> Path:
    """Two variants (a: amd64 + arm64, b: amd64), two stages each: 6 images, no RUN (no QEMU needed)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "a.Dockerfile").write_text(DOCKERFILE)
    (root / "b.Dockerfile").write_text(DOCKERFILE)
    (root / "app").mkdir(exist_ok=True)
    (root / "app" / "hello.txt").write_text("hello\n")
    (root / "rootfs").mkdir(exist_ok=True)
    for arch in ("amd64", "arm64"):
        if rootfs is not None:
            shutil.copy(rootfs / f"{arch}.tar", root / "rootfs" / f"{arch}.tar")
        else:
            (root / "rootfs" / f"{arch}.tar").write_bytes(arch.encode())
    write_spec(root, SPEC)
    return root


def digests(root: Path, overrides: tuple[tuple[str, str], ...] = (), values: dict[str, str] | None = None) -> dict[str, str]:
    """Every target's inputs digest per platform, base images identified by a stub (no engine)."""
    plan, _ = build_plan(load_spec(root / "bakegen.yaml"))
    resolved = plan.values(values or {}, environ={})

    def identities(references: list[str], platform: str) -> dict[str, str]:
        return {ref: "scratch" if ref == "scratch" else f"sha256:{ref}" for ref in references}

    return {f"{t.name}@{p}": target_inputs_digest(t, p, root, resolved, overrides, identities) for t in plan.targets for p in t.platforms}


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {key for key in before if before[key] != after[key]}


def test_one_dockerfile_changes_exactly_its_targets(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    before = digests(root)
    assert len(set(before.values())) == 6  # every target and platform has its own
    with (root / "b.Dockerfile").open("a") as dockerfile:
        dockerfile.write("# a comment is a change of the Dockerfile\n")
    assert changed(before, digests(root)) == {"full-b@linux/amd64", "light-b@linux/amd64"}


def test_a_context_file_changes_every_target_that_sees_it(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    before = digests(root)
    (root / "app" / "hello.txt").write_text("bonjour\n")
    assert changed(before, digests(root)) == set(before)


def test_an_arg_changes_exactly_the_targets_that_get_it(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    before = digests(root)
    assert changed(before, digests(root, values={"FLAVOUR": "mild"})) == {"full-b@linux/amd64", "light-b@linux/amd64"}
    by_set = digests(root, overrides=(("full-a.args.FLAVOUR", "hot"),))
    assert changed(before, by_set) == {"full-a@linux/amd64", "full-a@linux/arm64"}


def test_the_base_image_identity_changes_the_digest(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    for name in ("a.Dockerfile", "b.Dockerfile"):
        (root / name).write_text(DOCKERFILE.replace("FROM scratch AS base", "FROM example/base:1 AS base"))
    plan, _ = build_plan(load_spec(root / "bakegen.yaml"))
    values = plan.values({}, environ={})
    target = plan.targets[0]
    seen: list[tuple[list[str], str]] = []

    def identity(image_id: str) -> object:
        def identities(references: list[str], platform: str) -> dict[str, str]:
            seen.append((references, platform))
            return dict.fromkeys(references, image_id)

        return identities

    one = target_inputs_digest(target, "linux/amd64", root, values, (), identity("sha256:1"))  # type: ignore[arg-type]
    two = target_inputs_digest(target, "linux/amd64", root, values, (), identity("sha256:2"))  # type: ignore[arg-type]
    assert one != two
    assert seen[0] == (["example/base:1"], "linux/amd64")


def test_other_settings_and_set_overrides_count_but_not_the_label_itself() -> None:
    target = Target(
        "full-b", "b", "full", ".", "b.Dockerfile", ("linux/amd64",), (("FLAVOUR", (Var("FLAVOUR"),)), ("FIXED", (Text("x"),))), (),
        labels=(("org.example", "1"),),
    )  # fmt: skip
    overrides = (
        ("*.args.FIXED", "y"),
        ("full-*.platform", "linux/arm64"),
        ("light-*.args.FLAVOUR", "no"),
        (f"full-b.labels.{INPUTS_LABEL}", "z"),
    )
    assert build_args(target, {"FLAVOUR": "spicy"}, overrides) == {"FLAVOUR": "spicy", "FIXED": "y"}
    assert build_settings(target, overrides) == {"label.org.example": "1", "set.platform": "linux/arm64"}


def test_label_of_a_build_of_several_platforms_covers_them_all() -> None:
    assert label_value({"linux/amd64": "a" * 64}) == "a" * 64
    several = label_value({"linux/amd64": "a" * 64, "linux/arm64": "b" * 64})
    assert several != label_value({"linux/amd64": "a" * 64, "linux/arm64": "c" * 64})
    assert len(several) == 64


# --- against the real engine and registry ----------------------------------------------------------------------------


def revisions(repository: str) -> set[str]:
    """Every manifest the registry ever received for the repository (tagged or not), from its storage."""
    name = repository.split("/", 1)[1]
    folder = REGISTRY_STORAGE / name / "_manifests" / "revisions" / "sha256"
    return {path.name for path in folder.iterdir()} if folder.is_dir() else set()


def local_images(repository: str) -> list[str]:
    listed = subprocess.run(["docker", "images", "-q", repository], capture_output=True, text=True, check=True)
    return listed.stdout.split()


def index_digest(reference: str) -> str:
    raw = subprocess.run(["docker", "buildx", "imagetools", "inspect", "--raw", reference], capture_output=True, check=True).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def summary(stdout: str) -> dict[str, str]:
    """The bake summary table: TARGET@PLATFORM -> its last column (seconds, or `unchanged`)."""
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("TARGET ") and line.rstrip().endswith("SECONDS"))
    rows = [line.split() for line in lines[start + 1 :] if line.strip()]
    return {f"{row[0]}@{next(cell for cell in row if cell.startswith('linux/'))}": row[-1] for row in rows}


ALL_KEYS = {f"{stage}-a@linux/{arch}" for stage in ("full", "light") for arch in ("amd64", "arm64")} | {
    "full-b@linux/amd64",
    "light-b@linux/amd64",
}


@pytest.mark.docker
@pytest.mark.registry
def test_second_push_builds_and_pushes_nothing_and_a_dockerfile_change_rebuilds_its_targets(
    tmp_path: Path, bakegen: Runner, demo_rootfs: Path, registry_repository: str
) -> None:
    repo = registry_repository
    root = project(tmp_path / "p", demo_rootfs)
    push = ("bake", "--push", "--progress", "plain", "--var", f"REPO={repo}")  # plain: notes shown (quiet hides them)

    first = bakegen(*push, cwd=root)
    assert first.returncode == 0, first.stderr
    assert set(summary(first.stdout)) == ALL_KEYS and "unchanged" not in summary(first.stdout).values()
    assert registry_tags(repo) == {"full", "light", "full-b", "light-b"}
    published = {tag: index_digest(f"{repo}:{tag}") for tag in registry_tags(repo)}
    pushed = revisions(repo)
    assert len(pushed) == 6 + 4  # six images by digest, four indexes

    # A fresh runner: none of the images is in the engine any more.
    remove_images(repo)
    second = bakegen(*push, cwd=root)
    assert second.returncode == 0, second.stderr
    assert summary(second.stdout) == dict.fromkeys(ALL_KEYS, "unchanged")
    assert "inputs: 6 of 6 images unchanged" in second.stderr
    assert local_images(repo) == []  # nothing was built
    assert revisions(repo) == pushed  # nothing was pushed
    assert {tag: index_digest(f"{repo}:{tag}") for tag in registry_tags(repo)} == published

    # A new tag of unchanged images is published from them, without a build.
    versioned = bakegen(*push, "--var", "VERSION=v2", cwd=root)
    assert versioned.returncode == 0, versioned.stderr
    assert set(summary(versioned.stdout).values()) == {"unchanged"} and local_images(repo) == []
    assert registry_tags(repo) == {"full", "light", "full-b", "light-b", "full-v2", "light-v2", "full-b-v2", "light-b-v2"}
    assert index_digest(f"{repo}:full-b-v2") == published["full-b"]

    # One Dockerfile changes: exactly its targets are built and pushed.
    with (root / "b.Dockerfile").open("a") as dockerfile:
        dockerfile.write("# touched\n")
    third = bakegen(*push, cwd=root)
    assert third.returncode == 0, third.stderr
    rows = summary(third.stdout)
    assert {key for key, last in rows.items() if last != "unchanged"} == {"full-b@linux/amd64", "light-b@linux/amd64"}
    assert index_digest(f"{repo}:full") == published["full"] and index_digest(f"{repo}:full-b") != published["full-b"]
    label = subprocess.run(
        ["docker", "buildx", "imagetools", "inspect", "--format", "{{json .Image.Config.Labels}}", f"{repo}:light-b"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert INPUTS_LABEL in label

    # --force builds everything again.
    forced = bakegen(*push, "--force", cwd=root)
    assert forced.returncode == 0, forced.stderr
    assert "unchanged" not in summary(forced.stdout).values() and set(summary(forced.stdout)) == ALL_KEYS


@pytest.mark.docker
@pytest.mark.registry
def test_a_per_platform_runner_records_the_published_digest_of_an_unchanged_image(
    tmp_path: Path, bakegen: Runner, demo_rootfs: Path, registry_repository: str
) -> None:
    repo = registry_repository
    root = project(tmp_path / "p", demo_rootfs)
    first = bakegen("bake", "--push", "--progress", "quiet", "--var", f"REPO={repo}", "light-a", cwd=root)
    assert first.returncode == 0, first.stderr
    metadata = tmp_path / "arm64.json"
    again = bakegen(
        "bake", "--push", "--platform", "linux/arm64", "--progress", "quiet", "--var", f"REPO={repo}", "--metadata-file", str(metadata),
        "light-a", cwd=root,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert summary(again.stdout) == {"light-a@linux/arm64": "unchanged"}
    import json

    [image] = json.loads(metadata.read_text())["images"]
    arm64 = subprocess.run(
        ["docker", "buildx", "imagetools", "inspect", "--raw", f"{repo}:light"], capture_output=True, text=True, check=True
    ).stdout
    entry = next(m for m in json.loads(arm64)["manifests"] if m["platform"]["architecture"] == "arm64")
    assert image["digest"] == entry["digest"] and image["platform"] == "linux/arm64"
