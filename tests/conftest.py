"""Shared fixtures. Docker-backed tests skip with a reason where no engine exists, and
fail instead when BAKEGEN_REQUIRE_DOCKER=1 (CI), so CI can never pass by skipping."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bakegen.dockerhost import REGISTRY, registry_reachable, unavailable_reason

ROOT = Path(__file__).resolve().parent.parent
LLAMA_SPEC = ROOT / "examples" / "llama.cpp" / "bakegen.yaml"
DEMO_DIR = ROOT / "examples" / "demo"
REQUIRE_DOCKER = os.environ.get("BAKEGEN_REQUIRE_DOCKER") == "1"


def _missing(reason: str) -> None:
    if REQUIRE_DOCKER:
        pytest.fail(f"BAKEGEN_REQUIRE_DOCKER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("docker"):
        reason = unavailable_reason()
        if reason:
            _missing(reason)
    if item.get_closest_marker("registry") and not registry_reachable():
        _missing(f"no registry answers on {REGISTRY} (scripts/provision-docker.sh starts one)")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without bake variables a developer may have exported."""
    env = {k: v for k, v in os.environ.items() if k not in {"VERSION", "REPO", "CUDA_VERSION", "MUSA_VERSION", "CUDA_DOCKER_ARCH"}}
    env.update(extra)
    return env


Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def bakegen() -> Runner:
    """Run the real CLI in a subprocess: real exit codes, real stderr, no shared state."""

    def run(
        *args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bakegen", *args], cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=timeout
        )

    return run


def write_spec(directory: Path, text: str, name: str = "bakegen.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL_SPEC = """\
version: 1
image: {repository: example.com/app}
stages: [full, server]
variants:
  cpu:
    dockerfile: Dockerfile
    suffix: ""
    platforms: [linux/amd64, linux/arm64]
  cuda:
    dockerfile: Dockerfile
    args: {CUDA_VERSION: "12.4.0"}
"""


@pytest.fixture(scope="session")
def demo_rootfs() -> Path:
    """The demo's busybox root file systems (examples/demo/prepare-rootfs.sh)."""
    if unavailable_reason() is None or REQUIRE_DOCKER:
        subprocess.run(["bash", str(DEMO_DIR / "prepare-rootfs.sh")], check=True, capture_output=True)
    return DEMO_DIR / "rootfs"


def unique_repository(prefix: str = "t") -> str:
    """A registry repository no other test (or earlier run) uses."""
    import uuid

    return f"localhost:5000/bakegen-{prefix}-{uuid.uuid4().hex[:8]}"


def registry_tags(repository: str) -> set[str]:
    import json
    import urllib.error
    import urllib.request

    name = repository.split("/", 1)[1]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:5000/v2/{name}/tags/list", timeout=10) as response:
            return set(json.load(response)["tags"] or [])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # the repository was never pushed to
            return set()
        raise


def docker_run(image: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an image that must already be local (never pulled), then remove the container."""
    return subprocess.run(["docker", "run", "--rm", "--pull", "never", image, *args], capture_output=True, text=True, timeout=120)


def remove_images(repository: str) -> None:
    listed = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repository], capture_output=True, text=True)
    refs = listed.stdout.split()
    if refs:
        subprocess.run(["docker", "rmi", "--force", *refs], capture_output=True)


def smoke_containers() -> list[str]:
    """Containers bakegen smoke started and did not remove (must always be none)."""
    listed = subprocess.run(["docker", "ps", "-aq", "--filter", "label=org.bakegen.smoke.session"], capture_output=True, text=True)
    return listed.stdout.split()


@pytest.fixture(scope="session")
def demo_images(demo_rootfs: Path) -> Iterator[str]:
    """Every demo image built once and loaded, under a repository of this test run."""
    repo = unique_repository("smoke")
    result = subprocess.run(
        [sys.executable, "-m", "bakegen", "bake", "--load", "--progress", "quiet", "--var", f"REPO={repo}"],
        cwd=DEMO_DIR, env=clean_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    yield repo
    remove_images(repo)
