"""The built wheel: package data (render works without a checkout), and one install for every command.

The fresh-venv tests install the wheel the way a user does, `pip install bakegen`, dependencies
resolved by pip, but offline: the venv (made without pip, with no system site-packages) sees the
dependencies of this test run's own environment through a .pth file, and nothing else, least of all
this checkout. A dependency the wheel does not declare is not installed by pip; one it declares but
this environment lacks fails the install.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import uuid
import zipfile
from pathlib import Path

import pytest

from tests.conftest import DEMO_DIR, LLAMA_SPEC, ROOT, clean_env, remove_images

RUNNERS = {"python-on-whales", "testcontainers", "rich"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    [built_wheel] = dist.glob("bakegen-*.whl")
    return built_wheel


def test_wheel_renders_without_the_checkout(tmp_path: Path, wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "bakegen/data/bakegen.schema.json" in names and "bakegen/data/docker-bake.hcl.j2" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    (work / "bakegen.yaml").write_text(LLAMA_SPEC.read_text())
    env = clean_env(PYTHONPATH=str(site), BAKEGEN_NO_CACHE="1")
    where = subprocess.run(
        [sys.executable, "-c", "import bakegen; print(bakegen.__file__)"], cwd=work, env=env, capture_output=True, text=True
    )
    assert where.stdout.startswith(str(site)), where.stdout
    rendered = subprocess.run([sys.executable, "-m", "bakegen", "render"], cwd=work, env=env, capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    assert (work / "docker-bake.hcl").read_text() == (LLAMA_SPEC.parent / "docker-bake.hcl").read_text()


def dependencies_only(directory: Path) -> Path:
    """This environment's site-packages without bakegen (nor its editable hook, nor any .pth file):
    a directory of symlinks, so the fresh venv resolves every dependency and never this checkout."""
    directory.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.startswith(("bakegen", "_editable_impl_bakegen", "__editable__")) or entry.suffix == ".pth":
            continue
        (directory / entry.name).symlink_to(entry)
    return directory


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A new venv where `pip install bakegen` (the wheel, no extras, no index) installed bakegen."""
    base = tmp_path_factory.mktemp("venv")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site] = (venv / "lib").glob("python3*/site-packages")
    (site / "dependencies.pth").write_text(f"{dependencies_only(base / 'dependencies')}\n")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--no-index", "--find-links", str(wheel.parent), "--disable-pip-version-check", "bakegen"],
        capture_output=True, text=True, env=clean_env(), timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return venv


def test_one_install_declares_the_runners_as_plain_dependencies(fresh_venv: Path) -> None:
    code = (
        "import importlib.metadata as m, bakegen\n"
        "print(bakegen.__file__)\n"
        "for requirement in m.requires('bakegen'): print('REQ', requirement)\n"
        "print('EXTRAS', *m.metadata('bakegen').get_all('Provides-Extra'))\n"
    )
    result = subprocess.run(
        [fresh_venv / "bin" / "python", "-c", code], cwd=fresh_venv, capture_output=True, text=True, env=_outside_checkout()
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(fresh_venv)), result.stdout  # the installed wheel, not this checkout
    requirements = re.findall(r"^REQ (.*)$", result.stdout, re.MULTILINE)
    unconditional = {re.split(r"[<>=!~; \[]", r, maxsplit=1)[0].lower() for r in requirements if "extra ==" not in r}
    assert unconditional >= RUNNERS, requirements
    # `bakegen[docker]` still installs (older docs and workflows) and adds nothing.
    assert "docker" in result.stdout.split("EXTRAS", 1)[1].split()
    assert not [r for r in requirements if "extra == 'docker'" in r or 'extra == "docker"' in r], requirements


def _outside_checkout() -> dict[str, str]:
    env = clean_env()
    env.pop("PYTHONPATH", None)
    return env


@pytest.mark.docker
@pytest.mark.slow
def test_fresh_venv_bakes_and_smokes_the_demo(fresh_venv: Path, tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(DEMO_DIR, demo, ignore=shutil.ignore_patterns("rootfs"))
    prepared = subprocess.run(["bash", str(demo / "prepare-rootfs.sh")], capture_output=True, text=True, timeout=300)
    assert prepared.returncode == 0, prepared.stderr
    repository = f"localhost:5000/bakegen-pack-{uuid.uuid4().hex[:8]}"
    bakegen = str(fresh_venv / "bin" / "bakegen")
    env = _outside_checkout()
    try:
        for command in (["bake", "--load"], ["smoke"]):
            result = subprocess.run(
                [bakegen, *command, "--var", f"REPO={repository}"], cwd=demo, env=env, capture_output=True, text=True, timeout=900
            )
            output = result.stdout + result.stderr
            assert result.returncode == 0, output
            assert "Traceback" not in output and "ModuleNotFoundError" not in output, output
        images = subprocess.run(["docker", "images", "--format", "{{.Tag}}", repository], capture_output=True, text=True)
        assert {"light", "server-cuda", "full-rocm"} <= set(images.stdout.split()), images.stdout
        left = subprocess.run(["docker", "ps", "-a", "--format", "{{.Image}}"], capture_output=True, text=True).stdout.split()
        assert [image for image in left if image.startswith(repository)] == []  # smoke removed its containers
    finally:
        remove_images(repository)
