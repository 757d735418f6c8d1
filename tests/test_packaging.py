"""The wheel ships the schema and the template as package data: render works without a checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import LLAMA_SPEC, ROOT, clean_env


def test_wheel_renders_without_the_checkout(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("bakegen-*.whl")
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
