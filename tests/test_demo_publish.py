"""`make demo` publishes the demo to the local registry: the Makefile's own recipe (`demo-images`), run into a
repository of this test, then checked through the registry's HTTP API: the tag list is exactly the spec's
final tags (no handoff tag), and every multi-platform tag is an index of exactly the spec's platforms,
with the spec's index annotations."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bakegen.runners.registry import ACCEPT
from tests.conftest import DEMO_DIR, ROOT, clean_env, registry_tags, smoke_containers

BIN = Path(sys.executable).parent


def registry_manifest(repository: str, reference: str) -> dict[str, Any]:
    """A manifest or index as the registry serves it (127.0.0.1:5000, plain HTTP)."""
    name = repository.split("/", 1)[1]
    request = urllib.request.Request(f"http://127.0.0.1:5000/v2/{name}/manifests/{reference}", headers={"Accept": ACCEPT})
    with urllib.request.urlopen(request, timeout=30) as response:
        document: dict[str, Any] = json.load(response)
    return document


def registry_blob(repository: str, digest: str) -> dict[str, Any]:
    name = repository.split("/", 1)[1]
    with urllib.request.urlopen(f"http://127.0.0.1:5000/v2/{name}/blobs/{digest}", timeout=30) as response:
        document: dict[str, Any] = json.load(response)
    return document


def index_annotations(annotations: list[str]) -> dict[str, str]:
    """The spec's annotations that belong on an index (`index:` or `index,manifest:` prefixed)."""
    found = {}
    for entry in annotations:
        key, _, value = entry.partition("=")
        levels, sep, bare = key.rpartition(":")
        if sep and "index" in levels.split(","):
            found[bare] = value
    return found


@pytest.mark.docker
@pytest.mark.registry
@pytest.mark.slow
def test_make_demo_publishes_exactly_the_final_tags(bakegen: Any, demo_rootfs: Path, registry_repository: str) -> None:
    repo = registry_repository
    planned = bakegen("plan", "--json", "--var", f"REPO={repo}", cwd=DEMO_DIR)
    assert planned.returncode == 0, planned.stderr
    targets: dict[str, dict[str, Any]] = json.loads(planned.stdout)["target"]
    final: dict[str, list[str]] = {}  # tag -> the targets whose images it lists (cpu's s390x source shares cpu's tags)
    for target, body in targets.items():
        for tag in body["tags"]:
            final.setdefault(tag.removeprefix(f"{repo}:"), []).append(target)
    assert len(final) == 15  # 12 published images, 3 with a -cuda12 alias; no -VERSION tags while VERSION is empty
    assert final["full"] == ["full-cpu", "full-cpu-s390x"]
    made = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.installed", "demo-images", f"BIN={BIN}",
         f"DEMO_BAKE_ARGS=--var REPO={repo} --progress quiet"],
        env=clean_env(), capture_output=True, text=True, timeout=3000,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    assert registry_tags(repo) == set(final)  # exactly the final tags: no handoff tag, nothing left over
    for tag, members in sorted(final.items()):  # single-platform targets too: one index per final tag
        body = targets[members[0]]
        document = registry_manifest(repo, tag)
        assert document["mediaType"] == "application/vnd.oci.image.index.v1+json", tag
        platforms = [f"{m['platform']['os']}/{m['platform']['architecture']}" for m in document["manifests"]]
        assert sorted(platforms) == sorted(p for member in members for p in targets[member]["platforms"]), tag
        assert document.get("annotations", {}) == index_annotations(body.get("annotations", [])), tag
        for entry in document["manifests"]:  # every platform's image is in the repository, by digest
            assert registry_manifest(repo, entry["digest"])["mediaType"] == "application/vnd.oci.image.manifest.v1+json", tag
    # :full is one list of three platforms from two Dockerfiles; the s390x image is a real s390x image
    full = registry_manifest(repo, "full")["manifests"]
    assert [m["platform"]["architecture"] for m in full] == ["amd64", "arm64", "s390x"]
    s390x_image = registry_manifest(repo, full[2]["digest"])
    config = registry_blob(repo, s390x_image["config"]["digest"])
    assert config["architecture"] == "s390x" and config["config"]["Labels"]["org.bakegen.demo.accelerator"] == "cpu"
    assert smoke_containers() == []
