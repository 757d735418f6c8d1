"""Shared fixtures. Docker-backed tests skip with a reason where no engine exists, and
fail instead when BAKEGEN_REQUIRE_DOCKER=1 (CI), so CI can never pass by skipping."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bakegen.dockerhost import REGISTRY, registry_reachable, unavailable_reason
from bakegen.main import main

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


@dataclass(frozen=True)
class Result:
    """What a CLI run left: the exit code and everything it printed."""

    returncode: int
    stdout: str
    stderr: str


Runner = Callable[..., Result]


@pytest.fixture
def bakegen(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Runner:
    """Run the CLI in this process (`main(argv)`): real exit codes and output, no interpreter start-up.
    `env` is the whole environment of the run, as for a subprocess."""

    def run(*args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None) -> Result:
        wanted = env if env is not None else clean_env()
        capsys.readouterr()
        with monkeypatch.context() as patch:
            if cwd is not None:
                patch.chdir(cwd)
            for name in set(os.environ) - set(wanted):
                patch.delenv(name)
            for name, value in wanted.items():
                patch.setenv(name, value)
            try:
                code = main(list(args))
            except SystemExit as exit:  # argparse: usage errors and --help
                code = int(exit.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def bakegen_process() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real CLI in a subprocess, where a test needs a process of its own (signals, imports)."""

    def run(*args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bakegen", *args], cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=600
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


_MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
REGISTRY_STORAGE = (
    Path(os.environ.get("BAKEGEN_STATE_DIR", "/var/tmp/bakegen")) / "registry" / "docker" / "registry" / "v2" / "repositories"
)


def delete_repository(repository: str) -> None:
    """Delete every tag of a test's repository through the registry API, then its (now empty) storage."""
    import shutil
    import urllib.request

    name = repository.split("/", 1)[1]
    for tag in registry_tags(repository):
        url = f"http://127.0.0.1:5000/v2/{name}/manifests/{tag}"
        head = urllib.request.Request(url, method="HEAD", headers={"Accept": _MANIFEST_TYPES})
        with contextlib.suppress(urllib.error.HTTPError):  # 404: gone with another tag of the same digest
            with urllib.request.urlopen(head, timeout=10) as response:
                digest = response.headers["Docker-Content-Digest"]
            delete = urllib.request.Request(f"http://127.0.0.1:5000/v2/{name}/manifests/{digest}", method="DELETE")
            urllib.request.urlopen(delete, timeout=10).close()
    # The registry API cannot delete a repository itself; its storage can, where this machine keeps it.
    shutil.rmtree(REGISTRY_STORAGE / name, ignore_errors=True)


@pytest.fixture
def registry_repository() -> Iterator[str]:
    """A registry repository of this test alone, deleted (tags and storage) afterwards, with its local images."""
    repository = unique_repository("reg")
    yield repository
    remove_images(repository)
    if registry_reachable():
        delete_repository(repository)


def registry_tags(repository: str) -> set[str]:
    import json
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
        cwd=DEMO_DIR,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip  (a subprocess: a session fixture outlives any one test's capture)
    assert result.returncode == 0, result.stderr
    yield repo
    remove_images(repo)


@pytest.fixture(scope="session", autouse=True)
def _remove_kept_bake_files() -> Iterator[None]:
    """`bake --dry-run` keeps its rendered bake files (and says where) for the user to read: the suite's own go."""
    import shutil
    import tempfile

    def kept() -> set[Path]:
        return set(Path(tempfile.gettempdir()).glob("bakegen-*"))

    before = kept()
    yield
    for folder in kept() - before:
        shutil.rmtree(folder, ignore_errors=True)
