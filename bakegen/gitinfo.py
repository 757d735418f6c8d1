"""The image version and OCI labels, computed from git the same way on a laptop and in GitHub Actions.

`read_git_facts` runs the `git` binary (never os.environ: the caller passes the environment) and, inside
GitHub Actions (GITHUB_ACTIONS=true), overlays what the runner knows and a shallow detached checkout cannot:
the branch or tag pushed (GITHUB_REF_TYPE/GITHUB_REF_NAME), the pull request's source branch
(GITHUB_HEAD_REF), the default branch (the event payload), the repository URL (GITHUB_SERVER_URL and
GITHUB_REPOSITORY). The overlay applies only while HEAD is GITHUB_SHA: otherwise the job checked out
something else and the ref names do not describe it.

Schemes (`compute_version`; an explicit, non-empty VERSION always wins and gets no aliases):
  build-number  `b<N>` on the default branch (N = `git rev-list --count HEAD`, as llama.cpp's tags),
                `<branch>-b<N>-<sha7>` elsewhere and for pull requests, `b<N>-<sha7>` on a detached HEAD
                (`b<N>` when a tag named exactly `b<N>` is at HEAD, as on a pushed release tag).
  git-tag       the tag at HEAD (`v` stripped optionally) plus `MAJOR.MINOR` and `MAJOR` aliases for a
                semver release without pre-release part; no `MAJOR` alias for 0.x, which promises nothing.
  sha           `sha-<sha7>`.
Fallbacks, each with a note and never a traceback:
  no git, not a repository, no commits yet  version `dev` (`missing_git_reason` says which).
  shallow clone (count unknown)             build-number falls back to `sha-<sha7>`: a count from a partial
                                            history would be a wrong build number that looks right.
  git-tag without a tag at HEAD             `sha-<sha7>`.
  default branch unknown                    `main` and `master` count as the default branch.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from bakegen.errors import BakegenError

NO_GIT_VERSION = "dev"
TAG_MAX = 128  # Docker's limit on a tag's length
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?")
_SCP_LIKE = re.compile(r"(?:[^@/]+@)?([A-Za-z0-9.-]{2,}):(?!//)/?(.+)")  # git@github.com:owner/repo.git
_MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can format


@dataclass(frozen=True)
class GitFacts:
    sha: str
    short_sha: str
    commit_count: int | None  # None in a shallow clone: a partial history's count is not the build number
    branch: str | None  # None on a detached HEAD outside CI
    default_branch: str | None
    tag: str | None  # the tag at HEAD; with several, the highest semver one
    commit_time: int  # committer time, epoch seconds
    is_shallow: bool
    remote_url: str | None  # as configured, credentials stripped
    dirty: bool  # tracked files modified
    pull_request: bool = False  # a PR build never gets a default-branch version, even from a fork's main
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class VersionScheme:
    kind: Literal["build-number", "git-tag", "sha"] = "build-number"
    strip_v: bool = True  # git-tag: v1.2.3 -> 1.2.3
    semver_aliases: bool = True  # git-tag: also MAJOR.MINOR and MAJOR


@dataclass(frozen=True)
class VersionResult:
    version: str
    aliases: tuple[str, ...]
    source: str  # how the version was determined, for `bakegen version`
    notes: tuple[str, ...] = ()


# --- reading git -------------------------------------------------------------------------


def _probe(directory: Path, env: Mapping[str, str], default_branch: str | None) -> GitFacts | str:
    executable = shutil.which("git", path=env.get("PATH", ""))
    if executable is None:
        return "git is not installed (not found on PATH)"
    # C locale: the git messages we quote stay English; no prompts or optional index locks from a read-only query.
    git_env = {**env, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> tuple[int, str, str]:
        try:
            done = subprocess.run([executable, "-C", str(directory), *args], env=git_env, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            return 1, "", str(exc)
        return done.returncode, done.stdout.strip(), done.stderr.strip()

    def out(*args: str) -> str:
        code, stdout, _ = git(*args)
        return stdout if code == 0 else ""

    code, shallow, error = git("rev-parse", "--is-shallow-repository")
    if code != 0:
        return f"{directory} is not in a git repository" + (f" ({error.splitlines()[0]})" if error else "")
    head = out("log", "-1", "--no-show-signature", "--format=%H %ct").split()
    if len(head) != 2:
        return f"the git repository at {directory} has no commits yet"
    sha, is_shallow = head[0], shallow == "true"
    count = "" if is_shallow else out("rev-list", "--count", "HEAD")
    tags = out("for-each-ref", "--points-at", "HEAD", "--format=%(refname:short)", "refs/tags").split()
    remotes = out("remote").split()
    remote = "origin" if "origin" in remotes else remotes[0] if len(remotes) == 1 else None
    facts = GitFacts(
        sha=sha,
        short_sha=sha[:7],
        commit_count=int(count) if count.isdigit() else None,
        branch=out("symbolic-ref", "-q", "--short", "HEAD") or None,
        default_branch=out("symbolic-ref", "-q", "refs/remotes/origin/HEAD").removeprefix("refs/remotes/origin/") or None,
        tag=max(tags, key=_tag_rank) if tags else None,
        commit_time=int(head[1]),
        is_shallow=is_shallow,
        remote_url=strip_credentials(out("remote", "get-url", remote) or None) if remote else None,
        dirty=bool(out("status", "--porcelain", "--untracked-files=no")),
    )
    facts = _github_actions(facts, env)
    # The spec's `default-branch` says which branch gets the plain b<N>: it wins over what git or the event guesses.
    return replace(facts, default_branch=default_branch) if default_branch else facts


def _tag_rank(tag: str) -> tuple[int, tuple[int, ...], str]:
    """Prefer semver releases, then pre-releases, then any tag; the highest version within each."""
    match = _SEMVER.fullmatch(tag.removeprefix("v"))
    if not match:
        return (0, (), tag)
    return (1 if match[4] else 2, tuple(int(part) for part in match.groups()[:3]), tag)


def _github_actions(facts: GitFacts, env: Mapping[str, str]) -> GitFacts:
    if env.get("GITHUB_ACTIONS") != "true":
        return facts
    if env.get("GITHUB_SERVER_URL") and env.get("GITHUB_REPOSITORY"):
        facts = replace(facts, remote_url=f"{env['GITHUB_SERVER_URL'].rstrip('/')}/{env['GITHUB_REPOSITORY']}")
    ci_sha = env.get("GITHUB_SHA", "")
    if ci_sha and ci_sha != facts.sha:
        return replace(facts, notes=(f"HEAD {facts.short_sha} is not GITHUB_SHA {ci_sha[:7]}: the CI ref names are ignored",))
    if not facts.default_branch:
        try:
            default = json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text(encoding="utf-8"))["repository"]["default_branch"]
            facts = replace(facts, default_branch=default if isinstance(default, str) and default else None)
        except (KeyError, TypeError, ValueError, OSError):
            pass  # no payload, or an event without a repository: the caller's default_branch applies
    ref_name, ref_type = env.get("GITHUB_REF_NAME", ""), env.get("GITHUB_REF_TYPE", "")
    if env.get("GITHUB_EVENT_NAME") == "pull_request" and env.get("GITHUB_HEAD_REF"):
        return replace(facts, branch=env["GITHUB_HEAD_REF"], pull_request=True)  # GITHUB_REF_NAME is "<n>/merge"
    if ref_type == "branch" and ref_name:
        return replace(facts, branch=ref_name)
    if ref_type == "tag" and ref_name:
        return replace(facts, tag=ref_name, branch=None)
    return facts


def read_git_facts(directory: Path, env: Mapping[str, str], *, default_branch: str | None = None) -> GitFacts | None:
    """What git (and GitHub Actions) say about HEAD; None without git, outside a repository, before the first commit.

    `default_branch` is used when neither `origin/HEAD` nor the GitHub event payload names one."""
    facts = _probe(directory, env, default_branch)
    return facts if isinstance(facts, GitFacts) else None


def missing_git_reason(directory: Path, env: Mapping[str, str]) -> str | None:
    """Why `read_git_facts` returns None (one line), or None when it does not."""
    facts = _probe(directory, env, None)
    return facts if isinstance(facts, str) else None


# --- versions ----------------------------------------------------------------------------


def docker_tag_safe(text: str, max_length: int = TAG_MAX) -> str:
    """`text` as a Docker tag: [A-Za-z0-9_.-] only, no leading `.` or `-`, at most max_length characters."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).lstrip(".-")[:max_length]
    return safe or "x"


def compute_version(facts: GitFacts | None, scheme: VersionScheme, *, explicit: str | None) -> VersionResult:
    if explicit:
        if not _TAG.fullmatch(explicit):
            raise BakegenError(
                f"VERSION {explicit!r} is not a valid image tag ([A-Za-z0-9_.-], not starting with . or -, at most 128 characters)"
            )
        return VersionResult(explicit, (), "explicit VERSION")
    if facts is None:
        note = "no git commit to derive a version from (no git, not a repository, or no commits yet): set VERSION"
        return VersionResult(NO_GIT_VERSION, (), "fallback: no git", (note,))
    notes = [*facts.notes] + ([f"uncommitted changes: the image is not exactly commit {facts.short_sha}"] if facts.dirty else [])

    def result(version: str, source: str, aliases: tuple[str, ...] = ()) -> VersionResult:
        return VersionResult(version, aliases, source, tuple(notes))

    sha_version = f"sha-{facts.short_sha}"
    if scheme.kind == "sha":
        return result(sha_version, f"git commit {facts.short_sha}")
    if scheme.kind == "git-tag":
        if not facts.tag:
            notes.append(f"no git tag at HEAD: using {sha_version}; tag the commit or set VERSION")
            return result(sha_version, "fallback: no tag at HEAD")
        return result(*_tag_version(facts.tag, scheme, notes))
    if facts.commit_count is None:
        notes.append(
            f"shallow clone: commit count unknown, using {sha_version}; fetch the history (`git fetch --unshallow`, `fetch-depth: 0` in actions/checkout) or set VERSION"
        )
        return result(sha_version, "fallback: shallow clone")
    build, default = f"b{facts.commit_count}", facts.default_branch
    if default is None and facts.branch in ("main", "master"):
        notes.append(f"default branch unknown (no origin/HEAD): taking {facts.branch}; `git remote set-head origin --auto` sets it")
        default = facts.branch
    if facts.branch is None and facts.tag == build:
        # A tag b<N> on this very commit count (llama.cpp tags its releases so): the build number is released.
        return result(build, f"commit count, released as tag {facts.tag}")
    if facts.branch is None:
        notes.append("detached HEAD and no CI ref: the version carries the commit; check out a branch or set VERSION")
        return result(f"{build}-{facts.short_sha}", f"commit count of detached HEAD {facts.short_sha}")
    if facts.branch == default and not facts.pull_request:
        return result(build, f"commit count on the default branch {default}")
    suffix = f"-{build}-{facts.short_sha}"
    what = "pull request from branch" if facts.pull_request else "branch"
    return result(docker_tag_safe(facts.branch, TAG_MAX - len(suffix)) + suffix, f"commit count on {what} {facts.branch}")


def _tag_version(tag: str, scheme: VersionScheme, notes: list[str]) -> tuple[str, str, tuple[str, ...]]:
    """(version, source, aliases) of a git tag."""
    prefix, bare = ("" if scheme.strip_v else "v", tag[1:]) if re.match(r"v\d", tag) else ("", tag)
    version = docker_tag_safe((prefix + bare).replace("+", "_"))  # `+` (semver build metadata) is not allowed in tags
    if version != prefix + bare:
        notes.append(f"tag {tag} is not a valid image tag: using {version}")
    match = _SEMVER.fullmatch(bare)
    if scheme.semver_aliases and not match:
        notes.append(f"tag {tag} is not semver (MAJOR.MINOR.PATCH): no aliases")
    if not scheme.semver_aliases or not match or match[4]:  # a pre-release must not move MAJOR or MAJOR.MINOR
        return version, f"git tag {tag}", ()
    major_minor, major = f"{prefix}{match[1]}.{match[2]}", f"{prefix}{match[1]}"
    return version, f"git tag {tag}", (major_minor, major) if match[1] != "0" else (major_minor,)


# --- OCI metadata ------------------------------------------------------------------------


def strip_credentials(url: str | None) -> str | None:
    """The URL without user and password in http(s) URLs and without the password in others."""
    if not url or "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    keep = "" if parts.scheme in ("http", "https") else userinfo.split(":", 1)[0] + "@"
    return urlunsplit(parts._replace(netloc=keep + host))


def https_source_url(remote: str | None) -> str | None:
    """A browsable URL of a git remote: ssh and scp-like forms become https, `.git` goes; local paths give None."""
    if not remote:
        return None
    if "://" in remote:
        parts = urlsplit(remote)
        if parts.scheme not in ("http", "https", "ssh", "git", "git+ssh") or not parts.hostname:
            return None
        scheme = parts.scheme if parts.scheme in ("http", "https") else "https"
        host = parts.netloc.rsplit("@", 1)[-1] if scheme == parts.scheme else parts.hostname  # ssh ports are not web ports
        path = parts.path
    elif match := _SCP_LIKE.fullmatch(remote):
        scheme, host, path = "https", match[1], "/" + match[2]
    else:
        return None
    return f"{scheme}://{host}{path.rstrip('/').removesuffix('.git')}"


def source_date_epoch(env: Mapping[str, str]) -> tuple[int | None, tuple[str, ...]]:
    """SOURCE_DATE_EPOCH when set and valid (whole seconds since 1970), and a note when set but invalid."""
    raw = env.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return None, ()
    if not raw.isdecimal() or not raw.isascii() or int(raw) > _MAX_EPOCH:
        return None, (f"SOURCE_DATE_EPOCH={raw!r} is not whole seconds since 1970: ignored, the commit time is used",)
    return int(raw), ()


def oci_metadata(facts: GitFacts | None, version: str | None, *, source_url: str | None, env: Mapping[str, str]) -> dict[str, str]:
    """org.opencontainers.image.* labels; a fact that is unknown leaves its key out. Same inputs, same labels."""
    labels: dict[str, str] = {}
    epoch, _ = source_date_epoch(env)
    if epoch is None and facts is not None:
        epoch = facts.commit_time
    if epoch is not None:
        labels["org.opencontainers.image.created"] = datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if facts is not None:
        labels["org.opencontainers.image.revision"] = facts.sha
    if version:
        labels["org.opencontainers.image.version"] = version
    url = strip_credentials(source_url) if source_url else https_source_url(facts.remote_url if facts else None)
    if url:
        labels["org.opencontainers.image.source"] = url
        labels["org.opencontainers.image.url"] = url
    return labels
