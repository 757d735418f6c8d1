"""The OCI metadata of `versioning`, end to end: `bakegen bake --push` of a tiny image (FROM scratch) from a
temporary git repository to the local registry, then the labels read back through the registry API (the
config blob) and the index annotations through `docker buildx imagetools inspect --raw`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Runner, clean_env

pytestmark = [pytest.mark.docker, pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")]

COMMIT_TIME = 1_700_000_000  # 2023-11-14T22:13:20Z
SOURCE = "https://github.com/example/app"
SPEC = """\
version: 1
image: {repository: example.com/app}
stages: [full]
tags: ["{stage}{suffix}", "{stage}{suffix}-{VERSION}"]
versioning:
  source-url: https://github.com/example/app
  args: {APP_VERSION: version, BUILD_DATE: created, APP_REVISION: revision}
labels:
  org.example.flavour: "{variant}-{VERSION}"
variants:
  one: {dockerfile: Dockerfile, suffix: ""}
  two: {dockerfile: Dockerfile}
"""
DOCKERFILE = "FROM scratch AS full\nARG APP_VERSION\nARG BUILD_DATE\nARG APP_REVISION\nCOPY hello.txt /\n"


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A git repository on main with two commits (so the version is b2) holding the spec and its Dockerfile."""
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CEILING_DIRECTORIES=str(tmp_path),
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.com",
        DOCKER_CONFIG=os.environ.get("DOCKER_CONFIG", str(Path.home() / ".docker")),
    )
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "bakegen.yaml").write_text(SPEC, encoding="utf-8")
    (repo / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
    for n in range(2):
        (repo / "hello.txt").write_text(f"hello {n}\n", encoding="utf-8")
        commands = [["init", "-q", "-b", "main"]] if n == 0 else []
        commands += [["add", "-A"], ["commit", "-q", "-m", f"commit {n}"]]
        for args in commands:
            dates = {"GIT_COMMITTER_DATE": f"@{COMMIT_TIME + 60 * n} +0000", "GIT_AUTHOR_DATE": f"@{COMMIT_TIME} +0000"}
            subprocess.run(["git", *args], cwd=repo, env={**env, **dates}, check=True, capture_output=True)
    return repo, env


def registry_json(repository: str, path: str, accept: str = "") -> dict[str, Any]:
    name = repository.split("/", 1)[1]
    request = urllib.request.Request(f"http://127.0.0.1:5000/v2/{name}/{path}", headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        document: dict[str, Any] = json.load(response)
    return document


def index_of(reference: str) -> dict[str, Any]:
    raw = subprocess.run(["docker", "buildx", "imagetools", "inspect", "--raw", reference], capture_output=True, check=True, timeout=60)
    document: dict[str, Any] = json.loads(raw.stdout)
    return document


@pytest.mark.registry
@pytest.mark.slow
def test_bake_push_puts_the_oci_metadata_on_every_image_and_index(
    bakegen: Runner, project: tuple[Path, dict[str, str]], registry_repository: str
) -> None:
    repo, env = project
    revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout.strip()
    result = bakegen("bake", "--push", "--var", f"REPO={registry_repository}", cwd=repo, env=env)
    assert result.returncode == 0, result.stderr
    expected = {
        "org.opencontainers.image.created": "2023-11-14T22:14:20Z",  # the commit time: the same for every rebuild
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.version": "b2",
        "org.opencontainers.image.source": SOURCE,
        "org.opencontainers.image.url": SOURCE,
    }
    for variant, tag in (("one", "full-b2"), ("two", "full-two-b2")):
        index = index_of(f"{registry_repository}:{tag}")
        assert index["annotations"] == expected  # the index annotations of the merged tag
        [entry] = index["manifests"]
        manifest = registry_json(registry_repository, f"manifests/{entry['digest']}", entry["mediaType"])
        config = registry_json(registry_repository, f"blobs/{manifest['config']['digest']}")
        labels = config["config"]["Labels"]
        assert len(labels.pop("org.bakegen.inputs.digest")) == 64  # what a later push compares (bakegen.unchanged)
        assert labels == {**expected, "org.example.flavour": f"{variant}-b2"}  # no placeholder lands literally


def test_plan_json_equals_buildx_print_with_the_computed_version(bakegen: Runner, project: tuple[Path, dict[str, str]]) -> None:
    """The rendered file stays the same for every commit; given the variables `bakegen version` computes
    (as `bakegen bake` gives them to buildx), buildx resolves exactly what `plan --json` says."""
    repo, env = project
    assert bakegen("render", cwd=repo, env=env).returncode == 0
    variables = json.loads(bakegen("version", "--json", cwd=repo, env=env).stdout)["variables"]
    assert variables["VERSION"] == "b2" and variables["OCI_CREATED"] == "2023-11-14T22:14:20Z"
    plan = bakegen("plan", "--json", cwd=repo, env=env)
    printed = subprocess.run(
        ["docker", "buildx", "bake", "--print"], cwd=repo, env={**env, **variables}, capture_output=True, text=True, timeout=60
    )
    assert printed.returncode == 0, printed.stderr
    assert plan.stdout == printed.stdout
    assert json.loads(plan.stdout)["target"]["full-two"]["args"]["APP_VERSION"] == "b2"
    assert json.loads(plan.stdout)["target"]["full-two"]["labels"]["org.opencontainers.image.version"] == "b2"


@pytest.mark.registry
@pytest.mark.slow
def test_bake_push_puts_the_oci_metadata_on_every_manifest(
    bakegen: Runner, project: tuple[Path, dict[str, str]], registry_repository: str
) -> None:
    repo, env = project
    assert bakegen("bake", "--push", "two", "--var", f"REPO={registry_repository}", cwd=repo, env=env).returncode == 0
    [entry] = index_of(f"{registry_repository}:full-two-b2")["manifests"]
    manifest = registry_json(registry_repository, f"manifests/{entry['digest']}", entry["mediaType"])
    assert manifest.get("annotations", {}).get("org.opencontainers.image.version") == "b2"
