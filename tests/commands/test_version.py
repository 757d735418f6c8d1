"""`bakegen version`, and the version `plan`, `bake` and `render` use, on real temporary git repositories:
with tags, without tags, on a branch, in a shallow clone and with no git at all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Runner, clean_env

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

COMMIT_TIME = 1_700_000_000  # 2023-11-14T22:13:20Z
SPEC = """\
version: 1
image: {{repository: example.com/app}}
stages: [full]
tags: ["{{stage}}{{suffix}}", "{{stage}}{{suffix}}-{{VERSION}}"]
versioning:
  scheme: {scheme}
  default-branch: main
  source-url: https://github.com/example/app
  args: {{APP_VERSION: version, BUILD_DATE: created, APP_REVISION: revision}}
labels:
  org.example.flavour: "{{variant}}-{{VERSION}}"
variants:
  cpu: {{dockerfile: Dockerfile, suffix: ""}}
"""
DOCKERFILE = "FROM scratch AS full\nARG APP_VERSION\nARG BUILD_DATE\nARG APP_REVISION\nCOPY Dockerfile /\n"


def git_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The CLI's whole environment: no bake variables, no user or system git config, no repository above tmp_path."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return clean_env(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CEILING_DIRECTORIES=str(tmp_path),
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.com",
        **extra,
    )


def git(directory: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=directory, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def write_project(directory: Path, scheme: str = "build-number") -> None:
    (directory / "bakegen.yaml").write_text(SPEC.format(scheme=scheme), encoding="utf-8")
    (directory / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return git_env(tmp_path)


@pytest.fixture
def repo(tmp_path: Path, env: dict[str, str]) -> Path:
    """main: 3 commits, the last tagged v1.2.3; feature: one more commit."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, env, "init", "-q", "-b", "main")
    write_project(repo)
    for n in range(3):
        (repo / "file.txt").write_text(str(n), encoding="utf-8")
        git(repo, env, "add", "-A")
        when = {"GIT_COMMITTER_DATE": f"@{COMMIT_TIME + 60 * n} +0000", "GIT_AUTHOR_DATE": f"@{COMMIT_TIME} +0000"}
        git(repo, {**env, **when}, "commit", "-q", "-m", f"commit {n}")
    git(repo, env, "tag", "v1.2.3")
    git(repo, env, "checkout", "-q", "-b", "feature/x")
    (repo / "file.txt").write_text("feature", encoding="utf-8")
    git(repo, env, "commit", "-q", "-am", "feature")
    git(repo, env, "checkout", "-q", "main")
    return repo


def version(bakegen: Runner, directory: Path, env: dict[str, str], *args: str) -> str:
    result = bakegen("version", *args, cwd=directory, env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout.strip()


def facts(bakegen: Runner, directory: Path, env: dict[str, str]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(version(bakegen, directory, env, "--json"))
    return loaded


def test_default_branch_gives_the_build_number_and_every_fact(bakegen: Runner, repo: Path, env: dict[str, str]) -> None:
    result = bakegen("version", cwd=repo, env=env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "b3\n", "")
    document = facts(bakegen, repo, env)
    revision = git(repo, env, "rev-parse", "HEAD")
    assert document["version"] == "b3" and document["aliases"] == []
    assert document["revision"] == revision
    assert document["created"] == "2023-11-14T22:15:20Z"  # the commit time of the third commit, not now
    assert document["source"] == "https://github.com/example/app"
    assert document["variables"] == {
        "VERSION": "b3",
        "OCI_CREATED": "2023-11-14T22:15:20Z",
        "OCI_REVISION": revision,
        "OCI_SOURCE": "https://github.com/example/app",
    }
    labels = document["labels"]
    assert isinstance(labels, dict) and labels["org.opencontainers.image.url"] == "https://github.com/example/app"


def test_a_branch_gives_branch_count_and_sha(bakegen: Runner, repo: Path, env: dict[str, str]) -> None:
    git(repo, env, "checkout", "-q", "feature/x")
    sha7 = git(repo, env, "rev-parse", "--short=7", "HEAD")
    assert version(bakegen, repo, env) == f"feature-x-b4-{sha7}"


def test_git_tag_scheme_with_and_without_a_tag(bakegen: Runner, repo: Path, env: dict[str, str]) -> None:
    write_project(repo, "git-tag")  # uncommitted: the tree is dirty, which is noted, not fatal
    document = facts(bakegen, repo, env)
    assert (document["version"], document["aliases"]) == ("1.2.3", ["1.2", "1"])
    git(repo, env, "stash", "-q")
    git(repo, env, "checkout", "-q", "feature/x")
    write_project(repo, "git-tag")
    result = bakegen("version", cwd=repo, env=env)
    sha7 = git(repo, env, "rev-parse", "--short=7", "HEAD")
    assert result.returncode == 0 and result.stdout == f"sha-{sha7}\n"
    assert "no git tag at HEAD" in result.stderr


def test_shallow_clone_falls_back_to_the_sha_with_one_note(bakegen: Runner, repo: Path, env: dict[str, str], tmp_path: Path) -> None:
    git(tmp_path, env, "clone", "-q", "--depth", "1", f"file://{repo}", "shallow")
    shallow = tmp_path / "shallow"
    result = bakegen("version", cwd=shallow, env=env)
    sha7 = git(shallow, env, "rev-parse", "--short=7", "HEAD")
    assert result.returncode == 0 and result.stdout == f"sha-{sha7}\n"
    assert result.stderr.count("\n") == 1 and "shallow clone" in result.stderr and "fetch-depth: 0" in result.stderr


@pytest.mark.parametrize("where", ["no-git-on-path", "not-a-repository"])
def test_without_git_the_version_is_dev_with_one_clear_line(bakegen: Runner, tmp_path: Path, env: dict[str, str], where: str) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    write_project(plain)
    if where == "no-git-on-path":
        (tmp_path / "empty-bin").mkdir()
        env = {**env, "PATH": str(tmp_path / "empty-bin")}
    result = bakegen("version", cwd=plain, env=env)
    assert (result.returncode, result.stdout) == (0, "dev\n")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert ("git is not installed" if where == "no-git-on-path" else "not in a git repository") in result.stderr
    plan = bakegen("plan", "--json", cwd=plain, env=env)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["target"]["full-cpu"]["tags"] == ["example.com/app:full", "example.com/app:full-dev"]


def test_an_explicit_version_wins(bakegen: Runner, repo: Path, env: dict[str, str]) -> None:
    assert version(bakegen, repo, {**env, "VERSION": "b4567"}) == "b4567"
    assert version(bakegen, repo, {**env, "VERSION": ""}) == "b3"  # empty is unset, as CI sets it off tags
    tags = json.loads(bakegen("plan", "--json", cwd=repo, env={**env, "VERSION": "b4567"}).stdout)["target"]["full-cpu"]["tags"]
    assert tags == ["example.com/app:full", "example.com/app:full-b4567"]
    printed = json.loads(bakegen("plan", "--json", "--var", "VERSION=rc1", cwd=repo, env={**env, "VERSION": "b4567"}).stdout)
    assert printed["target"]["full-cpu"]["tags"][1] == "example.com/app:full-rc1"
    assert printed["target"]["full-cpu"]["args"]["APP_VERSION"] == "rc1"
    overridden = json.loads(bakegen("plan", "--json", cwd=repo, env={**env, "OCI_REVISION": "abc"}).stdout)["target"]["full-cpu"]["args"]
    assert overridden["APP_REVISION"] == "abc"  # each filled variable can be set from the environment
    bad = bakegen("version", cwd=repo, env={**env, "VERSION": "-not a tag"})
    assert bad.returncode == 2 and "not a valid image tag" in bad.stderr and "Traceback" not in bad.stderr


def test_plan_fills_the_version_and_the_mapped_args(bakegen: Runner, repo: Path, env: dict[str, str]) -> None:
    target = json.loads(bakegen("plan", "--json", cwd=repo, env=env).stdout)["target"]["full-cpu"]
    assert target["tags"] == ["example.com/app:full", "example.com/app:full-b3"]
    assert target["args"] == {
        "APP_REVISION": git(repo, env, "rev-parse", "HEAD"),
        "APP_VERSION": "b3",
        "BUILD_DATE": "2023-11-14T22:15:20Z",
    }


def test_source_date_epoch_wins_for_created(bakegen: Runner, repo: Path, env: dict[str, str]) -> None:
    document = facts(bakegen, repo, {**env, "SOURCE_DATE_EPOCH": "86400"})
    assert document["created"] == "1970-01-02T00:00:00Z"


def test_bake_builds_with_the_version_and_resolved_labels(bakegen: Runner, repo: Path, env: dict[str, str]) -> None:
    result = bakegen("bake", "--dry-run", cwd=repo, env=env)
    assert result.returncode == 0, result.stderr
    revision = git(repo, env, "rev-parse", "HEAD")
    # The bake file of this run: every label resolved to text, none left as a placeholder.
    assert '"org.example.flavour" = "cpu-b3"' in result.stdout
    assert f'"org.opencontainers.image.revision" = "{revision}"' in result.stdout
    assert '"org.opencontainers.image.created" = "2023-11-14T22:15:20Z"' in result.stdout
    assert '"org.opencontainers.image.source" = "https://github.com/example/app"' in result.stdout
    assert "VERSION=b3" in result.stderr  # bake is given the version (the bake file's ${VERSION})


def test_render_stays_the_same_from_commit_to_commit(bakegen: Runner, repo: Path, env: dict[str, str]) -> None:
    first = bakegen("render", "-o", "-", cwd=repo, env=env)
    git(repo, env, "checkout", "-q", "feature/x")
    second = bakegen("render", "-o", "-", cwd=repo, env=env)
    assert first.returncode == 0 and first.stdout == second.stdout
    assert git(repo, env, "rev-parse", "HEAD") not in first.stdout and '"APP_VERSION" = "${VERSION}"' in first.stdout
    assert first.stderr == ""  # render never reads git, so it never notes anything about it


def test_version_needs_a_versioning_block(bakegen: Runner, tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
    spec = SPEC.format(scheme="sha").replace("versioning:", "unused:").split("unused:")[0] + "variants:\n  cpu: {dockerfile: Dockerfile}\n"
    (tmp_path / "bakegen.yaml").write_text(spec.replace("-{VERSION}", ""), encoding="utf-8")
    result = bakegen("version", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "no `versioning:` block" in result.stderr


def test_workflow_computes_the_version_in_every_job_and_bakes_strictly(bakegen: Runner, repo: Path, env: dict[str, str]) -> None:
    import yaml

    result = bakegen("workflow", "-o", "-", cwd=repo, env=env)
    assert result.returncode == 0, result.stderr
    jobs = yaml.safe_load(result.stdout)["jobs"]
    assert set(jobs) == {"build", "merge"}
    for job in jobs.values():
        runs = [str(step.get("run", "")) for step in job["steps"]]
        checkout = next(step for step in job["steps"] if step.get("name") == "Check out")
        assert checkout["with"]["fetch-depth"] == 0  # the build number counts the whole history
        version_step = runs.index('bakegen version -f "$BAKEGEN_SPEC" --json')
        uses_version = [i for i, run in enumerate(runs) if "bakegen bake" in run or "bakegen merge" in run]
        assert uses_version and all(version_step < i for i in uses_version)
        assert all("--strict" in runs[i] for i in uses_version if "bakegen bake" in runs[i])
    unversioned_spec = SPEC.format(scheme="sha").split("versioning:")[0].replace("-{VERSION}", "")
    (repo / "bakegen.yaml").write_text(unversioned_spec + "variants:\n  cpu: {dockerfile: Dockerfile}\n", encoding="utf-8")
    unversioned = bakegen("workflow", "-o", "-", cwd=repo, env=env)
    assert unversioned.returncode == 0 and "bakegen version" not in unversioned.stdout


def test_semver_alias_tags_only_for_a_release_tag(bakegen: Runner, repo: Path, env: dict[str, str]) -> None:
    spec = SPEC.format(scheme="git-tag").replace(
        '"{stage}{suffix}-{VERSION}"]', '"{stage}{suffix}-{VERSION}", "{stage}-{VERSION_MAJOR_MINOR}", "{stage}-{VERSION_MAJOR}"]'
    )
    (repo / "bakegen.yaml").write_text(spec, encoding="utf-8")
    git(repo, env, "commit", "-q", "-am", "alias tags")
    git(repo, env, "tag", "v2.5.0")

    def tags(*args: str, **extra: str) -> list[str]:
        result = bakegen("plan", "--json", *args, cwd=repo, env={**env, **extra})
        assert result.returncode == 0, result.stderr
        found: list[str] = json.loads(result.stdout)["target"]["full-cpu"]["tags"]
        return [tag.split(":", 1)[1] for tag in found]

    assert tags() == ["full", "full-2.5.0", "full-2.5", "full-2"]
    assert tags("--var", "VERSION=9.9.9") == ["full", "full-9.9.9"]  # an explicit version gets no aliases
    assert tags(VERSION="9.9.9") == ["full", "full-9.9.9"]
    git(repo, env, "tag", "-d", "v2.5.0")
    git(repo, env, "tag", "v0.3.0-rc.1")
    assert tags() == ["full", "full-0.3.0-rc.1"]  # a pre-release moves no alias


def test_annotation_levels() -> None:
    from bakegen.model import Target
    from bakegen.template import Text, Var

    target = Target(
        "full-cpu", "cpu", "full", ".", "Dockerfile", ("linux/amd64",), (), (),
        annotations=("plain=1", "index:only-index=2", "manifest:only-manifest=3", "index,manifest:both=4", "manifest-descriptor:d=5"),
        annotation_templates=(("org.opencontainers.image.version", (Var("VERSION"),)), ("empty", (Var("NONE"),))),
        index_annotations=(("org.opencontainers.image.version", (Var("VERSION"),)),),
    )  # fmt: skip
    values = {"VERSION": "b3", "NONE": ""}
    # as buildx reads them: no prefix is the manifest level; the OCI metadata is put on the index explicitly
    assert target.merged_index_annotations(values) == {"only-index": "2", "both": "4", "org.opencontainers.image.version": "b3"}
    assert target.manifest_annotations(values) == {
        "plain": "1",
        "only-manifest": "3",
        "both": "4",
        "org.opencontainers.image.version": "b3",
    }
    assert target.resolved_annotations(values)[-1] == "org.opencontainers.image.version=b3"  # the empty one is left out
    assert Target(
        "t", "v", "s", ".", "D", (), (), (), labels=(("z", "1"),), label_templates=(("a", (Text("x-"), Var("NONE"))),)
    ).resolved_labels(values) == {"a": "x-", "z": "1"}


@pytest.mark.parametrize("situation", ["release-tag", "no-tag", "branch", "shallow", "no-git"])
def test_bake_uses_the_documented_version_everywhere(
    bakegen: Runner, repo: Path, env: dict[str, str], tmp_path: Path, situation: str
) -> None:
    """bake (dry run: the exact buildx command and its variables) builds the version `bakegen version` prints."""
    directory = repo
    if situation in ("release-tag", "no-tag"):
        write_project(repo, "git-tag")
        git(repo, env, "commit", "-q", "-am", "git-tag scheme")
        if situation == "release-tag":
            git(repo, env, "tag", "v3.1.4")
    elif situation == "branch":
        git(repo, env, "checkout", "-q", "feature/x")
    elif situation == "shallow":
        git(tmp_path, env, "clone", "-q", "--depth", "1", f"file://{repo}", "shallow")
        directory = tmp_path / "shallow"
    else:
        shutil.rmtree(repo / ".git")
    sha7 = "" if situation == "no-git" else git(directory, env, "rev-parse", "--short=7", "HEAD")
    expected = {
        "release-tag": "3.1.4",
        "no-tag": f"sha-{sha7}",
        "branch": f"feature-x-b4-{sha7}",
        "shallow": f"sha-{sha7}",
        "no-git": "dev",
    }[situation]
    assert version(bakegen, directory, env) == expected
    result = bakegen("bake", "--dry-run", cwd=directory, env=env)
    assert result.returncode == 0, result.stderr
    assert f"VERSION={expected}" in result.stderr and f'"org.opencontainers.image.version" = "{expected}"' in result.stdout
    assert "Traceback" not in result.stderr
    if situation in ("no-tag", "shallow", "no-git"):
        assert f"note: version {expected}: " in result.stderr  # the fallback is announced, once
        assert result.stderr.count("note: version") == 1
