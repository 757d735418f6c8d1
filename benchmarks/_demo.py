"""The real demo for the build benchmarks: a private copy, a private base image, private repositories.

The machine (engine, BuildKit cache, registry) is shared, so nothing here prunes a cache: a build is made
cold by giving it a base image no build has used yet (the demo's Debian base with a layer of its own,
so new cache keys for every step above it), passed as the Dockerfiles' `BASE_IMAGE` ARG.
Everything a benchmark creates (the copy, the base image, the images, the registry repository) is removed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEMO = ROOT / "examples" / "demo"
DEBIAN = "bakegen-demo/debian:bookworm"
BAKEGEN = [sys.executable, "-m", "bakegen"]


def copy_demo() -> Path:
    """The demo with its root file systems, in a temporary directory (a benchmark may edit it)."""
    subprocess.run(["bash", str(DEMO / "prepare-rootfs.sh")], check=True, capture_output=True)
    root = Path(tempfile.mkdtemp(prefix="bakegen-bench-")) / "demo"
    shutil.copytree(DEMO, root, symlinks=True)
    return root


def fresh_base() -> str:
    """A base image no build cache knows: the Debian base plus a layer of its own. (A label alone is not
    enough: BuildKit also matches its cache by the content of the layers a step starts from.)"""
    name = f"bakegen-bench-base:{uuid.uuid4().hex[:10]}"
    dockerfile = f"FROM {DEBIAN}\nRUN echo {name} > /etc/bakegen-bench-base\n"
    subprocess.run(["docker", "build", "--quiet", "-t", name, "-"], input=dockerfile, text=True, check=True, capture_output=True)
    return name


def unique_repository(prefix: str) -> str:
    return f"localhost:5000/bakegen-bench-{prefix}-{uuid.uuid4().hex[:8]}"


def remove_images(*references: str) -> None:
    """Remove images by reference, or every tag of a repository."""
    for reference in references:
        listed = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", reference], capture_output=True, text=True)
        refs = listed.stdout.split() or ([reference] if ":" in reference.rsplit("/", 1)[-1] else [])
        if refs:
            subprocess.run(["docker", "rmi", "--force", *refs], capture_output=True)


def seed_commands(root: Path, repository: str, base: str) -> list[list[str]]:
    """One `docker build --target ... -f ...` per image, as hand-written scripts do (native platform)."""
    from bakegen.planner import build_plan
    from bakegen.slices import for_native
    from bakegen.spec import load_spec
    from bakegen.template import resolve

    plan, _ = build_plan(load_spec(root / "bakegen.yaml"))
    plan = for_native(plan, "linux/amd64")
    values = plan.values({"REPO": repository}, environ={})
    commands = []
    for target in plan.targets:
        argv = ["docker", "build", "--quiet", "--target", target.stage, "-f", target.dockerfile, "--platform", target.platforms[0]]
        argv += ["--build-arg", f"BASE_IMAGE={base}"]
        for name, value in target.args:
            argv += ["--build-arg", f"{name}={resolve(value, values)}"]
        for key, text in target.labels:
            argv += ["--label", f"{key}={text}"]
        for tag in plan.resolved_tags(target, values):
            argv += ["-t", tag]
        commands.append([*argv, str(root / target.context)])
    return commands


def registry_revisions(repository: str) -> set[str]:
    """Every manifest the local registry received for the repository (the provisioned registry's storage)."""
    from tests.conftest import REGISTRY_STORAGE

    folder = REGISTRY_STORAGE / repository.split("/", 1)[1] / "_manifests" / "revisions" / "sha256"
    return {path.name for path in folder.iterdir()} if folder.is_dir() else set()


def delete_repository(repository: str) -> None:
    from tests.conftest import delete_repository as delete

    delete(repository)
