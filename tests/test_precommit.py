"""The pre-commit hooks of .pre-commit-hooks.yaml, run by the real pre-commit (`pre-commit try-repo`)
on a scratch git repository whose specs are not at the top (docker/bakegen.yaml, api/bakegen.yml)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, Runner, clean_env

HOOKS_FILE = ROOT / ".pre-commit-hooks.yaml"
SPEC = """\
version: 1
image: {repository: example/app}
stages: [app]
variants:
  main: {dockerfile: Dockerfile, suffix: ""}
"""
SPECS = ("docker/bakegen.yaml", "api/bakegen.yml")
GIT = ["git", "-c", "user.name=bakegen tests", "-c", "user.email=tests@bakegen.invalid", "-c", "commit.gpgsign=false"]


def test_manifest_is_what_pre_commit_accepts(pre_commit_home: Path) -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-manifest", str(HOOKS_FILE)],
        env=clean_env(PRE_COMMIT_HOME=str(pre_commit_home)), capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    hooks = {hook["id"]: hook for hook in yaml.safe_load(HOOKS_FILE.read_text())}
    assert set(hooks) == {"bakegen-render", "bakegen-check"}
    assert hooks["bakegen-render"]["entry"] == "bakegen render --exit-code"
    assert hooks["bakegen-check"]["entry"] == "bakegen render --check"
    for hook in hooks.values():
        assert hook["pass_filenames"] is True
        files = re.compile(hook["files"])
        assert all(files.search(path) for path in ("bakegen.yaml", "docker/bakegen.yaml", "a/b/bakegen.yml"))
        assert not any(files.search(path) for path in ("mybakegen.yaml", "bakegen.yaml.orig", "docker-bake.hcl", "bakegen.json"))


@pytest.fixture(scope="session")
def hooks_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This working tree (committed or not) as a committed repository, so every try-repo call of the
    session uses one revision and pre-commit installs the hook environment once."""
    repo = tmp_path_factory.mktemp("hooks-repo")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True
    )
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    subprocess.run([*GIT, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "snapshot"], cwd=repo, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    return repo, sha


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    repo = tmp_path / "scratch"
    for spec in SPECS:
        (repo / spec).parent.mkdir(parents=True)
        (repo / spec).write_text(SPEC)
        (repo / spec).with_name("Dockerfile").write_text("FROM scratch AS app\n")
    subprocess.run([*GIT, "init", "-q"], cwd=repo, check=True)
    git_add(repo)
    return repo


def git_add(repo: Path) -> None:
    subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True)


def try_repo(scratch: Path, hooks_repo: tuple[Path, str], home: Path, hook: str) -> tuple[int, str]:
    """`pre-commit try-repo HOOKS HOOK --all-files`: the exit code and pre-commit's output.

    A failure of pre-commit itself (installing the hook environment) raises RuntimeError, so it can
    never pass for the hook failing as expected."""
    repo, sha = hooks_repo
    env = clean_env(PRE_COMMIT_HOME=str(home))
    env.pop("PYTHONPATH", None)  # the hook must run the bakegen pre-commit installed, not this checkout
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(repo), hook, "--ref", sha, "--all-files", "--color", "never"],
        cwd=scratch, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = result.stdout + result.stderr
    if "An unexpected error has occurred" in output or "An error has occurred" in output or not re.search(r"\.{3,}(Passed|Failed)", output):
        raise RuntimeError(f"pre-commit itself failed:\n{output}")
    return result.returncode, output


def up_to_date(bakegen: Runner, scratch: Path) -> bool:
    return all(bakegen("render", "--check", "-f", spec, cwd=scratch).returncode == 0 for spec in SPECS)


def test_render_hook_writes_then_fails_then_passes(
    scratch: Path, hooks_repo: tuple[Path, str], pre_commit_home: Path, bakegen: Runner
) -> None:
    code, output = try_repo(scratch, hooks_repo, pre_commit_home, "bakegen-render")
    assert code == 1, output  # it wrote both bake files: fix, and fail so they are reviewed
    assert up_to_date(bakegen, scratch), output
    git_add(scratch)
    code, output = try_repo(scratch, hooks_repo, pre_commit_home, "bakegen-render")
    assert code == 0, output  # nothing to change
    assert "Passed" in output
    spec = scratch / SPECS[1]
    spec.write_text(SPEC + "labels: {team: api}\n")
    git_add(scratch)
    code, output = try_repo(scratch, hooks_repo, pre_commit_home, "bakegen-render")
    assert code == 1, output
    assert '"team" = "api"' in (spec.parent / "docker-bake.hcl").read_text()
    assert up_to_date(bakegen, scratch)


def test_check_hook_fails_on_stale_and_missing_files_and_writes_nothing(
    scratch: Path, hooks_repo: tuple[Path, str], pre_commit_home: Path, bakegen: Runner
) -> None:
    for spec in SPECS:
        assert bakegen("render", "-f", spec, cwd=scratch).returncode == 0
    git_add(scratch)
    code, output = try_repo(scratch, hooks_repo, pre_commit_home, "bakegen-check")
    assert code == 0, output
    assert "Passed" in output
    stale_spec = scratch / SPECS[0]
    bake_file = stale_spec.with_name("docker-bake.hcl")
    before = bake_file.read_text()
    stale_spec.write_text(SPEC + "labels: {team: core}\n")
    git_add(scratch)
    code, output = try_repo(scratch, hooks_repo, pre_commit_home, "bakegen-check")
    assert code == 1, output
    assert "docker/docker-bake.hcl is stale" in output
    assert bake_file.read_text() == before  # a check writes nothing
    bake_file.unlink()
    git_add(scratch)
    code, output = try_repo(scratch, hooks_repo, pre_commit_home, "bakegen-check")
    assert code == 1, output
    assert "docker/docker-bake.hcl: missing; regenerate with" in output
    hook_output = output.split("- exit code: 1", 1)[1].strip().splitlines()
    assert len(hook_output) <= 2, output  # a line per spec, not a diff of the whole file
    assert not bake_file.exists()
