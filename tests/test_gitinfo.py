"""bakegen.gitinfo on real temporary repositories: versions, fallbacks, GitHub Actions checkouts, OCI labels.

Every git command here runs with a fixed identity and dates and without the user's or the system's git config."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bakegen.errors import BakegenError
from bakegen.gitinfo import (
    GitFacts,
    VersionScheme,
    compute_version,
    docker_tag_safe,
    https_source_url,
    missing_git_reason,
    oci_metadata,
    read_git_facts,
    strip_credentials,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

BUILD = VersionScheme("build-number")
TAGS = VersionScheme("git-tag")
SHA = VersionScheme("sha")
FIRST_COMMIT = 1_700_000_000  # 2023-11-14T22:13:20Z


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A git environment of this test only: no ~/.gitconfig, no /etc/gitconfig, no repository above tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CEILING_DIRECTORIES": str(tmp_path),
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "LC_ALL": "C",
    }


def git(directory: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=directory, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def commit(directory: Path, env: dict[str, str], message: str) -> str:
    """A commit whose dates follow from the commit count, so every run makes the same shas."""
    count = int(git(directory, env, "rev-list", "--count", "--all") or 0)
    when, authored = FIRST_COMMIT + 60 * count, FIRST_COMMIT - 86400  # the author date differs: commit_time is the committer's
    (directory / "file.txt").write_text(message, encoding="utf-8")
    git(directory, env, "add", "file.txt")
    dates = {"GIT_AUTHOR_DATE": f"@{authored} +0000", "GIT_COMMITTER_DATE": f"@{when} +0000"}
    git(directory, {**env, **dates}, "commit", "-q", "-m", message)
    return git(directory, env, "rev-parse", "HEAD")


@pytest.fixture
def upstream(tmp_path: Path, env: dict[str, str]) -> Path:
    """main with 3 commits tagged b3 and v1.2.3 (annotated), and a branch feature/Ünï+x@y with one more."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    git(repo, env, "init", "-q", "-b", "main")
    for n in range(3):
        commit(repo, env, f"commit {n}")
    git(repo, env, "tag", "b3")
    git(repo, {**env, "GIT_COMMITTER_DATE": f"@{FIRST_COMMIT} +0000"}, "tag", "-a", "-m", "release", "v1.2.3")
    git(repo, env, "checkout", "-q", "-b", "feature/Ünï+x@y")
    commit(repo, env, "feature work")
    git(repo, env, "checkout", "-q", "main")
    return repo


@pytest.fixture
def clone(tmp_path: Path, env: dict[str, str], upstream: Path) -> Path:
    """A developer's full clone: origin/HEAD names main."""
    git(tmp_path, env, "clone", "-q", f"file://{upstream}", "clone")
    return tmp_path / "clone"


def facts_of(directory: Path, env: dict[str, str], **kwargs: str) -> GitFacts:
    facts = read_git_facts(directory, env, **kwargs)
    assert facts is not None, missing_git_reason(directory, env)
    return facts


# --- facts and the build-number scheme ------------------------------------------------


def test_default_branch_gives_b_count(clone: Path, env: dict[str, str]) -> None:
    facts = facts_of(clone, env)
    assert (facts.branch, facts.default_branch, facts.commit_count, facts.is_shallow, facts.dirty) == ("main", "main", 3, False, False)
    assert facts.commit_time == FIRST_COMMIT + 120 and len(facts.sha) == 40 and facts.short_sha == facts.sha[:7]
    assert facts.tag == "v1.2.3"  # the semver tag is preferred over b3, and the annotated tag is seen through
    result = compute_version(facts, BUILD, explicit=None)
    assert (result.version, result.aliases, result.notes) == ("b3", (), ())
    assert "default branch main" in result.source


def test_other_branch_gives_sanitised_branch_count_and_sha(clone: Path, env: dict[str, str]) -> None:
    git(clone, env, "checkout", "-q", "feature/Ünï+x@y")
    facts = facts_of(clone, env)
    result = compute_version(facts, BUILD, explicit=None)
    assert result.version == f"feature-n-x-y-b4-{facts.short_sha}"
    assert "branch feature/Ünï+x@y" in result.source


def test_default_branch_without_origin_head_uses_the_given_default_or_guesses_main(upstream: Path, env: dict[str, str]) -> None:
    assert facts_of(upstream, env).default_branch is None
    assert facts_of(upstream, env, default_branch="develop").default_branch == "develop"
    guessed = compute_version(facts_of(upstream, env), BUILD, explicit=None)
    assert guessed.version == "b3" and "default branch unknown" in guessed.notes[0]
    declared = compute_version(facts_of(upstream, env, default_branch="develop"), BUILD, explicit=None)
    assert declared.version.startswith("main-b3-")


def test_detached_head_without_ci_carries_the_sha(clone: Path, env: dict[str, str]) -> None:
    git(clone, env, "checkout", "-q", "--detach", "HEAD~1")
    facts = facts_of(clone, env)
    assert facts.branch is None and facts.tag is None
    result = compute_version(facts, BUILD, explicit=None)
    assert result.version == f"b2-{facts.short_sha}"
    assert "detached HEAD" in result.notes[0]


def test_shallow_clone_falls_back_to_sha_with_a_note(tmp_path: Path, env: dict[str, str], upstream: Path) -> None:
    git(tmp_path, env, "clone", "-q", "--depth", "1", f"file://{upstream}", "shallow")
    facts = facts_of(tmp_path / "shallow", env)
    assert facts.is_shallow and facts.commit_count is None and facts.branch == "main"
    result = compute_version(facts, BUILD, explicit=None)
    assert result.version == f"sha-{facts.short_sha}"
    assert "git fetch --unshallow" in result.notes[0]


def test_dirty_tree_is_noted(clone: Path, env: dict[str, str]) -> None:
    (clone / "file.txt").write_text("changed", encoding="utf-8")
    (clone / "untracked.txt").write_text("new", encoding="utf-8")
    facts = facts_of(clone, env)
    assert facts.dirty
    assert any("uncommitted changes" in note for note in compute_version(facts, SHA, explicit=None).notes)
    git(clone, env, "checkout", "--", "file.txt")
    assert not facts_of(clone, env).dirty  # untracked files alone do not make the tree dirty


def test_sanitising_caps_the_whole_version_at_128() -> None:
    facts = GitFacts("a" * 40, "a" * 7, 12345, "x" * 300, "main", None, 0, False, None, False)
    version = compute_version(facts, BUILD, explicit=None).version
    assert len(version) == 128 and version.endswith("-b12345-aaaaaaa")
    assert docker_tag_safe("-.feature//a b") == "feature-a-b"
    assert docker_tag_safe("ü") == "x"


# --- the git-tag and sha schemes -------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "scheme", "version", "aliases"),
    [
        ("v1.2.3", TAGS, "1.2.3", ("1.2", "1")),
        ("v1.2.3", VersionScheme("git-tag", strip_v=False), "v1.2.3", ("v1.2", "v1")),
        ("v1.2.3", VersionScheme("git-tag", semver_aliases=False), "1.2.3", ()),
        ("2.0.0-rc.1", TAGS, "2.0.0-rc.1", ()),
        ("v0.4.1", TAGS, "0.4.1", ("0.4",)),
        ("1.2.3+build.7", TAGS, "1.2.3_build.7", ("1.2", "1")),
        ("release-2024", TAGS, "release-2024", ()),
        ("version-2", TAGS, "version-2", ()),
    ],
)
def test_tag_versions_and_aliases(tag: str, scheme: VersionScheme, version: str, aliases: tuple[str, ...]) -> None:
    facts = GitFacts("f" * 40, "f" * 7, None, None, None, tag, 0, True, None, False)
    result = compute_version(facts, scheme, explicit=None)
    assert (result.version, result.aliases) == (version, aliases)
    assert result.source == f"git tag {tag}"


def test_non_semver_tag_is_noted(clone: Path, env: dict[str, str]) -> None:
    git(clone, env, "checkout", "-q", "--detach", "HEAD~1")
    git(clone, env, "tag", "nightly")
    result = compute_version(facts_of(clone, env), TAGS, explicit=None)
    assert (result.version, result.aliases) == ("nightly", ())
    assert "not semver" in result.notes[0]


def test_git_tag_without_tag_falls_back_to_sha(clone: Path, env: dict[str, str]) -> None:
    git(clone, env, "checkout", "-q", "feature/Ünï+x@y")
    facts = facts_of(clone, env)
    result = compute_version(facts, TAGS, explicit=None)
    assert result.version == f"sha-{facts.short_sha}" and "no git tag at HEAD" in result.notes[0]
    assert compute_version(facts, SHA, explicit=None).version == f"sha-{facts.short_sha}"


def test_explicit_version_wins_and_is_checked(clone: Path, env: dict[str, str]) -> None:
    facts = facts_of(clone, env)
    assert compute_version(facts, TAGS, explicit="b4567") == compute_version(None, BUILD, explicit="b4567")
    assert compute_version(facts, TAGS, explicit="b4567").source == "explicit VERSION"
    assert compute_version(facts, BUILD, explicit="").version == "b3"  # the workflow sets VERSION='' off tags
    with pytest.raises(BakegenError, match="not a valid image tag"):
        compute_version(facts, BUILD, explicit="-bad tag")


# --- no git, no repository, no commits -------------------------------------------------


def test_without_git_on_path(tmp_path: Path, env: dict[str, str], clone: Path) -> None:
    no_git = {**env, "PATH": str(tmp_path / "empty-bin")}
    assert read_git_facts(clone, no_git) is None
    assert "git is not installed" in (missing_git_reason(clone, no_git) or "")
    result = compute_version(None, BUILD, explicit=None)
    assert result.version == "dev" and "set VERSION" in result.notes[0]


def test_outside_a_repository(tmp_path: Path, env: dict[str, str]) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert read_git_facts(plain, env) is None
    assert "not in a git repository" in (missing_git_reason(plain, env) or "")
    assert read_git_facts(tmp_path / "missing", env) is None


def test_empty_repository(tmp_path: Path, env: dict[str, str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, env, "init", "-q")
    assert read_git_facts(empty, env) is None
    assert "no commits yet" in (missing_git_reason(empty, env) or "")


# --- GitHub Actions: a detached, shallow checkout gives the local version ------------------


def actions_checkout(tmp_path: Path, env: dict[str, str], upstream: Path, ref: str, *, depth: int | None = 1) -> Path:
    """What actions/checkout does: init, fetch one commit without tags, check it out detached."""
    work = tmp_path / f"ci-{ref.replace('/', '-')}-{depth}"
    work.mkdir()
    sha = git(upstream, env, "rev-parse", f"{ref}^{{commit}}")
    git(work, env, "init", "-q")
    git(work, env, "remote", "add", "origin", f"file://{upstream}")
    git(work, env, "fetch", "-q", "--no-tags", *(["--depth", str(depth)] if depth else []), "origin", sha)
    git(work, env, "checkout", "-q", "--detach", sha)
    return work


def github_env(tmp_path: Path, env: dict[str, str], sha: str, ref_type: str, ref_name: str, **extra: str) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"repository": {"default_branch": "main"}}), encoding="utf-8")
    return {
        **env,
        "GITHUB_ACTIONS": "true",
        "GITHUB_SHA": sha,
        "GITHUB_REF_TYPE": ref_type,
        "GITHUB_REF_NAME": ref_name,
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "ggml-org/llama.cpp",
        **extra,
    }


def test_ci_tag_push_matches_local(tmp_path: Path, env: dict[str, str], upstream: Path, clone: Path) -> None:
    local = compute_version(facts_of(clone, env), TAGS, explicit=None)
    work = actions_checkout(tmp_path, env, upstream, "v1.2.3")
    ci_facts = facts_of(work, github_env(tmp_path, env, git(work, env, "rev-parse", "HEAD"), "tag", "v1.2.3"))
    assert ci_facts.is_shallow and ci_facts.branch is None and ci_facts.tag == "v1.2.3"
    assert ci_facts.remote_url == "https://github.com/ggml-org/llama.cpp"
    assert compute_version(ci_facts, TAGS, explicit=None) == local
    assert (local.version, local.aliases) == ("1.2.3", ("1.2", "1"))
    assert compute_version(ci_facts, SHA, explicit=None) == compute_version(facts_of(clone, env), SHA, explicit=None)


def test_ci_push_of_a_build_number_tag_gives_that_build_number(tmp_path: Path, env: dict[str, str], upstream: Path) -> None:
    work = actions_checkout(tmp_path, env, upstream, "b3", depth=None)
    facts = facts_of(work, github_env(tmp_path, env, git(work, env, "rev-parse", "HEAD"), "tag", "b3"))
    assert (facts.branch, facts.tag, facts.commit_count) == (None, "b3", 3)
    result = compute_version(facts, BUILD, explicit=None)
    assert (result.version, result.notes) == ("b3", ()) and "released as tag b3" in result.source
    other = facts_of(work, github_env(tmp_path, env, git(work, env, "rev-parse", "HEAD"), "tag", "b9"))
    assert compute_version(other, BUILD, explicit=None).version == f"b3-{other.short_sha}"  # a tag that is not the count


@pytest.mark.parametrize("branch", ["main", "feature/Ünï+x@y"])
def test_ci_branch_push_with_full_history_matches_local(
    tmp_path: Path, env: dict[str, str], upstream: Path, clone: Path, branch: str
) -> None:
    git(clone, env, "checkout", "-q", branch)
    local = compute_version(facts_of(clone, env), BUILD, explicit=None)
    work = actions_checkout(tmp_path, env, upstream, branch, depth=None)  # fetch-depth: 0
    ci = compute_version(
        facts_of(work, github_env(tmp_path, env, git(work, env, "rev-parse", "HEAD"), "branch", branch)), BUILD, explicit=None
    )
    assert ci == local
    assert ci.version.startswith("b3" if branch == "main" else "feature-n-x-y-b4-")


def test_ci_shallow_branch_push_notes_the_missing_count(tmp_path: Path, env: dict[str, str], upstream: Path) -> None:
    work = actions_checkout(tmp_path, env, upstream, "main")
    facts = facts_of(work, github_env(tmp_path, env, git(work, env, "rev-parse", "HEAD"), "branch", "main"))
    assert (facts.branch, facts.default_branch) == ("main", "main")  # from the env and the event payload, not git
    result = compute_version(facts, BUILD, explicit=None)
    assert result.version == f"sha-{facts.short_sha}" and "fetch-depth: 0" in result.notes[0]


def test_ci_pull_request_from_a_forks_main_is_not_a_release(tmp_path: Path, env: dict[str, str], upstream: Path) -> None:
    work = actions_checkout(tmp_path, env, upstream, "main", depth=None)
    sha = git(work, env, "rev-parse", "HEAD")
    pr = github_env(
        tmp_path, env, sha, "branch", "17/merge", GITHUB_EVENT_NAME="pull_request", GITHUB_HEAD_REF="main", GITHUB_BASE_REF="main"
    )
    facts = facts_of(work, pr)
    assert facts.pull_request and facts.branch == "main"
    result = compute_version(facts, BUILD, explicit=None)
    assert result.version == f"main-b3-{facts.short_sha}" and "pull request" in result.source


def test_ci_refs_ignored_when_head_is_not_github_sha(tmp_path: Path, env: dict[str, str], clone: Path) -> None:
    facts = facts_of(clone, github_env(tmp_path, env, "0" * 40, "tag", "v9.9.9"))
    assert (facts.tag, facts.branch) == ("v1.2.3", "main")
    assert "is not GITHUB_SHA" in compute_version(facts, TAGS, explicit=None).notes[0]


def test_github_variables_ignored_outside_actions(tmp_path: Path, env: dict[str, str], clone: Path) -> None:
    stale = github_env(tmp_path, env, "0" * 40, "tag", "v9.9.9")
    del stale["GITHUB_ACTIONS"]
    assert facts_of(clone, stale) == facts_of(clone, env)


# --- remote URLs and OCI labels --------------------------------------------------------


def test_credentials_in_the_remote_url_are_stripped(clone: Path, env: dict[str, str]) -> None:
    git(clone, env, "remote", "set-url", "origin", "https://x-access-token:ghp_SECRET@github.com/ggml-org/llama.cpp.git")
    facts = facts_of(clone, env)
    assert facts.remote_url == "https://github.com/ggml-org/llama.cpp.git"
    labels = oci_metadata(facts, "b3", source_url=None, env={})
    assert labels["org.opencontainers.image.source"] == "https://github.com/ggml-org/llama.cpp"
    assert "SECRET" not in repr(facts) + repr(labels)


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("git@github.com:ggml-org/llama.cpp.git", "https://github.com/ggml-org/llama.cpp"),
        ("ssh://git@gitlab.example.com:2222/group/app.git/", "https://gitlab.example.com/group/app"),
        ("https://token@github.com/o/r", "https://github.com/o/r"),
        ("http://gitea.local:3000/o/r.git", "http://gitea.local:3000/o/r"),
        ("git://example.org/r.git", "https://example.org/r"),
        ("file:///srv/git/r.git", None),
        ("/srv/git/r.git", None),
        ("../r", None),
        (None, None),
    ],
)
def test_https_source_url(remote: str | None, url: str | None) -> None:
    assert https_source_url(remote) == url


def test_strip_credentials_keeps_the_ssh_user() -> None:
    assert strip_credentials("ssh://git:pw@host/r") == "ssh://git@host/r"
    assert strip_credentials("https://u:p@host:8443/r") == "https://host:8443/r"


def test_oci_metadata_from_facts(clone: Path, env: dict[str, str]) -> None:
    facts = facts_of(clone, env)
    labels = oci_metadata(facts, "b3", source_url=None, env={})
    assert labels == {
        "org.opencontainers.image.created": "2023-11-14T22:15:20Z",  # the commit time, not now
        "org.opencontainers.image.revision": facts.sha,
        "org.opencontainers.image.version": "b3",
    }  # a file:// remote is no public source: left out, not "N/A"
    assert (
        oci_metadata(facts, "b3", source_url="https://u:p@example.com/app", env={})["org.opencontainers.image.url"]
        == "https://example.com/app"
    )


def test_source_date_epoch_wins_and_invalid_is_ignored_with_a_note(clone: Path, env: dict[str, str]) -> None:
    from bakegen.gitinfo import source_date_epoch

    facts = facts_of(clone, env)
    assert (
        oci_metadata(facts, "b3", source_url=None, env={"SOURCE_DATE_EPOCH": "0"})["org.opencontainers.image.created"]
        == "1970-01-01T00:00:00Z"
    )
    for invalid in ("yesterday", "-5", "1.5", "99999999999999"):
        assert (
            oci_metadata(facts, "b3", source_url=None, env={"SOURCE_DATE_EPOCH": invalid})["org.opencontainers.image.created"]
            == "2023-11-14T22:15:20Z"
        )
        assert "ignored" in source_date_epoch({"SOURCE_DATE_EPOCH": invalid})[1][0]
    assert source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}) == (1700000000, ())
    assert source_date_epoch({}) == (None, ())


def test_oci_metadata_without_facts_leaves_keys_out() -> None:
    assert oci_metadata(None, None, source_url=None, env={}) == {}
    assert oci_metadata(None, "dev", source_url=None, env={"SOURCE_DATE_EPOCH": "86400"}) == {
        "org.opencontainers.image.created": "1970-01-02T00:00:00Z",
        "org.opencontainers.image.version": "dev",
    }


def test_the_specs_default_branch_wins_over_origin_head(clone: Path, env: dict[str, str]) -> None:
    """origin/HEAD says main; a spec that publishes plain b<N> from `release` (or `master`) is obeyed."""
    assert facts_of(clone, env).default_branch == "main"
    on_main = compute_version(facts_of(clone, env, default_branch="master"), BUILD, explicit=None)
    assert on_main.version.startswith("main-b3-")  # main is not the spec's default branch
    git(clone, env, "checkout", "-q", "-b", "release")
    release = compute_version(facts_of(clone, env, default_branch="release"), BUILD, explicit=None)
    assert release.version == "b3"
