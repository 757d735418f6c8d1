"""runners/baseimages.py: base image identities and published labels, from the local engine and the registry."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bakegen.errors import EngineError
from bakegen.runners import baseimages
from bakegen.runners.baseimages import pick_manifest, registry_label, resolve_base_images
from tests.conftest import remove_images, unique_repository

LABEL = "org.bakegen.inputs.digest"
INDEX_ENTRIES = [
    {"digest": "sha256:amd64", "platform": {"os": "linux", "architecture": "amd64"}},
    {"digest": "sha256:arm64", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    {"digest": "sha256:armv7", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
    {"digest": "sha256:attestation", "platform": {"os": "unknown", "architecture": "unknown"}},
]


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("linux/amd64", "sha256:amd64"),
        ("linux/arm64", "sha256:arm64"),  # an index says arm64/v8, a spec says arm64
        ("linux/arm64/v8", "sha256:arm64"),
        ("linux/arm/v7", "sha256:armv7"),
        ("linux/arm", "sha256:armv7"),
        ("linux/arm/v6", None),
        ("linux/s390x", None),
    ],
)
def test_pick_manifest(platform: str, expected: str | None) -> None:
    assert pick_manifest(INDEX_ENTRIES, platform) == expected


class FakeDocker:
    """Stands in for the docker CLI: answers by argv, records every call."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[int, str, str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        code, out, err = self.answers.get(args, (1, "", "Error response from daemon: no such image"))
        return subprocess.CompletedProcess(["docker", *args], code, out, err)


def _inspect(*refs: str) -> tuple[str, ...]:
    return ("image", "inspect", "--format", "{{json .}}", *refs)


def _local(image_id: str, architecture: str = "amd64") -> str:
    return json.dumps({"Id": image_id, "Os": "linux", "Architecture": architecture}) + "\n"


def test_scratch_and_pinned_digests_need_no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDocker({})
    monkeypatch.setattr(baseimages, "_docker", fake)
    pinned = "alpine:3.19@sha256:" + "c" * 64
    assert resolve_base_images(["scratch", pinned, "scratch"], "linux/amd64") == {"scratch": "scratch", pinned: "sha256:" + "c" * 64}
    assert fake.calls == []


def test_one_inspect_for_all_local_images(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDocker({_inspect("a:1", "b:2"): (0, _local("sha256:a") + _local("sha256:b"), "")})
    monkeypatch.setattr(baseimages, "_docker", fake)
    assert resolve_base_images(["a:1", "b:2"], "linux/amd64") == {"a:1": "sha256:a", "b:2": "sha256:b"}
    assert fake.calls == [_inspect("a:1", "b:2")]


def test_missing_local_images_are_found_one_by_one_then_asked_of_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = json.dumps({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:index", "manifests": INDEX_ENTRIES})
    fake = FakeDocker(
        {
            _inspect("a:1", "remote:2"): (1, _local("sha256:a", "arm64"), "Error response from daemon: No such image: remote:2"),
            _inspect("a:1"): (0, _local("sha256:a", "arm64"), ""),
            ("buildx", "imagetools", "inspect", "--format", "{{json .Manifest}}", "remote:2"): (0, manifest, ""),
        }
    )
    monkeypatch.setattr(baseimages, "_docker", fake)
    assert resolve_base_images(["a:1", "remote:2"], "linux/arm64") == {"a:1": "sha256:a", "remote:2": "sha256:arm64"}
    assert fake.calls[-1] == ("buildx", "imagetools", "inspect", "--format", "{{json .Manifest}}", "remote:2")


def test_a_local_image_of_another_platform_is_not_the_base(monkeypatch: pytest.MonkeyPatch) -> None:
    single = json.dumps({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:remote"})
    fake = FakeDocker(
        {
            _inspect("a:1"): (0, _local("sha256:local", "arm64"), ""),
            ("buildx", "imagetools", "inspect", "--format", "{{json .Manifest}}", "a:1"): (0, single, ""),
        }
    )
    monkeypatch.setattr(baseimages, "_docker", fake)
    assert resolve_base_images(["a:1"], "linux/amd64") == {"a:1": "sha256:remote"}
    assert resolve_base_images(["a:1"], "linux/arm64") == {"a:1": "sha256:local"}
    fake.calls.clear()
    assert resolve_base_images(["a:1"], "linux/arm64", local_engine=False) == {"a:1": "sha256:remote"}
    assert [call[:2] for call in fake.calls] == [("buildx", "imagetools")]


def test_an_engine_that_does_not_answer_is_an_engine_error(monkeypatch: pytest.MonkeyPatch) -> None:
    down = (1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
    monkeypatch.setattr(baseimages, "_docker", FakeDocker({_inspect("a:1"): down}))
    with pytest.raises(EngineError, match=r"^docker image inspect a:1: Cannot connect to the Docker daemon"):
        resolve_base_images(["a:1"], "linux/amd64")


def test_no_docker_cli_is_an_engine_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EngineError, match="docker CLI is not installed"):
        resolve_base_images(["a:1"], "linux/amd64")


# --- against the engine and the registry on 127.0.0.1:5000 --------------------------------------------------------------


def build(reference: str, platform: str, label: str, context: Path, *, push: bool) -> None:
    """A tiny FROM-scratch image, for `platform` (no RUN, so no emulation needed), with the test label."""
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY f /\n")
    (context / "f").write_text(f"{reference} {platform}\n")
    output = ["--push"] if push else ["--load"]
    subprocess.run(
        [
            "docker",
            "buildx",
            "build",
            "--progress",
            "quiet",
            *output,
            "--platform",
            platform,
            "-t",
            reference,
            "--label",
            f"{LABEL}={label}",
            str(context),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )


def registry_manifest_digest(reference: str) -> str:
    """What the registry itself says the tag points to (Docker-Content-Digest)."""
    repository, tag = reference.rsplit(":", 1)
    accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
    request = urllib.request.Request(
        f"http://127.0.0.1:5000/v2/{repository.split('/', 1)[1]}/manifests/{tag}", method="HEAD", headers={"Accept": accept}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["Docker-Content-Digest"])


def image_id(reference: str) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", reference], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def local_repository() -> Iterator[str]:
    repository = unique_repository("inputs-local")
    yield repository
    remove_images(repository)


@pytest.mark.docker
def test_a_local_image_is_identified_by_its_image_id(local_repository: str, tmp_path: Path) -> None:
    reference = f"{local_repository}:base"
    build(reference, "linux/amd64", "local", tmp_path / "ctx", push=False)
    assert resolve_base_images([reference, "scratch"], "linux/amd64") == {reference: image_id(reference), "scratch": "scratch"}


@pytest.mark.docker
def test_a_registry_that_does_not_answer_is_an_engine_error_not_a_missing_tag() -> None:
    with pytest.raises(EngineError, match=r"^docker buildx imagetools inspect 127\.0\.0\.1:1/nothing:x: .*connection refused"):
        registry_label("127.0.0.1:1/nothing", "x", "linux/amd64", LABEL)


@pytest.fixture
def published(registry_repository: str, tmp_path: Path) -> dict[str, str]:
    """In the registry: `single` (amd64 only, label single-amd64) and `multi`, an index of amd64 and arm64
    images labelled multi-amd64 and multi-arm64; none of them left in the local engine."""
    repository = registry_repository
    build(f"{repository}:single", "linux/amd64", "single-amd64", tmp_path / "a", push=True)
    build(f"{repository}:multi-amd64", "linux/amd64", "multi-amd64", tmp_path / "b", push=True)
    build(f"{repository}:multi-arm64", "linux/arm64", "multi-arm64", tmp_path / "c", push=True)
    subprocess.run(
        ["docker", "buildx", "imagetools", "create", "-t", f"{repository}:multi", f"{repository}:multi-amd64", f"{repository}:multi-arm64"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    # The docker driver also keeps what it pushes; remove it so lookups must go to the registry.
    remove_images(repository)
    return {"repository": repository}


@pytest.mark.docker
@pytest.mark.registry
def test_registry_images_are_identified_by_the_platforms_manifest_digest(published: dict[str, str]) -> None:
    repository = published["repository"]
    single, multi = f"{repository}:single", f"{repository}:multi"
    assert resolve_base_images([single, multi], "linux/amd64") == {
        single: registry_manifest_digest(single),
        multi: registry_manifest_digest(f"{repository}:multi-amd64"),
    }
    assert resolve_base_images([multi], "linux/arm64") == {multi: registry_manifest_digest(f"{repository}:multi-arm64")}
    assert registry_manifest_digest(multi) not in resolve_base_images([multi], "linux/amd64").values()  # not the index's own


@pytest.mark.docker
@pytest.mark.registry
def test_a_base_image_found_nowhere_is_one_engine_error_line(published: dict[str, str]) -> None:
    repository = published["repository"]
    with pytest.raises(EngineError) as raised:
        resolve_base_images([f"{repository}:absent"], "linux/amd64")
    assert str(raised.value) == f"base image {repository}:absent: not found in the local engine nor in its registry"
    with pytest.raises(EngineError, match=r"^base image \S+:multi has no linux/s390x image \(it has: linux/amd64, linux/arm64\)$"):
        resolve_base_images([f"{repository}:multi"], "linux/s390x")


@pytest.mark.docker
@pytest.mark.registry
def test_a_local_image_of_another_platform_leaves_the_lookup_to_the_registry(published: dict[str, str], tmp_path: Path) -> None:
    reference = f"{published['repository']}:single"
    build(reference, "linux/arm64", "local-arm64", tmp_path / "local", push=False)  # shadows the tag locally, for arm64
    assert resolve_base_images([reference], "linux/amd64") == {reference: registry_manifest_digest(reference)}
    assert resolve_base_images([reference], "linux/arm64") == {reference: image_id(reference)}


@pytest.mark.docker
@pytest.mark.registry
def test_registry_label_reads_the_published_config_per_platform(published: dict[str, str]) -> None:
    repository = published["repository"]
    assert registry_label(repository, "single", "linux/amd64", LABEL) == "single-amd64"
    assert registry_label(repository, "multi", "linux/amd64", LABEL) == "multi-amd64"
    assert registry_label(repository, "multi", "linux/arm64", LABEL) == "multi-arm64"
    assert registry_label(repository, "multi", "linux/arm64/v8", LABEL) == "multi-arm64"
    # Not there: a tag, a platform, a label. None, not an error, and nothing pulled.
    assert registry_label(repository, "absent", "linux/amd64", LABEL) is None
    assert registry_label(repository, "single", "linux/arm64", LABEL) is None
    assert registry_label(repository, "multi", "linux/s390x", LABEL) is None
    assert registry_label(repository, "single", "linux/amd64", "org.example.other") is None
    listed = subprocess.run(["docker", "images", "-q", repository], capture_output=True, text=True, check=True)
    assert listed.stdout.strip() == ""


def test_label_of_a_single_image_config(monkeypatch: pytest.MonkeyPatch) -> None:
    config: dict[str, Any] = {"os": "linux", "architecture": "arm", "variant": "v7", "config": {"Labels": {LABEL: "x"}}}
    answer = (0, json.dumps(config), "")
    monkeypatch.setattr(
        baseimages, "_docker", FakeDocker({("buildx", "imagetools", "inspect", "--format", "{{json .Image}}", "r:t"): answer})
    )
    assert registry_label("r", "t", "linux/arm/v7", LABEL) == "x"
    assert registry_label("r", "t", "linux/arm/v6", LABEL) is None
