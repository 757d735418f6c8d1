"""Shared by every part of `bakegen init`: its constants, name rules and the draft (what init found,
before it is written as YAML)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bakegen.errors import BakegenError

# Where editors find the schema (yaml-language-server). The file in the canonical repository;
# a relative path would only work inside a bakegen checkout.
SCHEMA_URL = "https://raw.githubusercontent.com/bakegen/bakegen/main/schema/bakegen.schema.json"

MAX_DOCKERFILES = 50
# Directories never searched for Dockerfiles: version control, dependencies, caches.
SKIPPED_DIRECTORIES = frozenset(
    {".git", ".hg", ".svn", "node_modules", "vendor", "third_party", ".venv", "venv", "__pycache__", ".tox", ".nox", ".cache"}
    | {".mypy_cache", ".pytest_cache", ".ruff_cache", "site-packages"}
)
# Files named like Dockerfiles that are not Dockerfiles: ignore files, templates, editor leftovers.
NOT_DOCKERFILE_SUFFIXES: tuple[str, ...] = (".dockerignore", ".j2", ".jinja", ".jinja2", ".tmpl", ".tpl", ".template", ".in", ".md")
NOT_DOCKERFILE_SUFFIXES += (".bak", ".orig", ".rej", ".swp", "~")

# ARGs BuildKit sets itself (or reads as settings); a spec value would override the platform's.
PREDEFINED_ARGS = frozenset(
    {"TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT"}
    | {"SOURCE_DATE_EPOCH"}
    | {name for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY") for name in (proxy, proxy.lower())}
)
PREDEFINED_ARG_PREFIXES = ("BUILDKIT_",)

DEFAULT_VARIANT = "main"  # the variant of a plain `Dockerfile` at the top of the directory
RESERVED_VARIANT_NAMES = frozenset({"default"})  # bakegen makes a group `default`; a variant group may not take its name
IMAGE_VARIABLES = ("REPO", "IMAGE_REPO", "IMAGE_REPOSITORY")

# Attributes of a `docker buildx bake --print` target that bakegen carries over. Anything else
# (cache-to, secret, ssh, output, attest, ...) is reported by name.
MODELLED_BAKE_ATTRIBUTES = frozenset({"context", "dockerfile", "target", "platforms", "args", "tags", "labels", "annotations"})

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # the schema's variant and stage names
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # the schema's ARG and variable names
# The schema's image.repository.
_REPOSITORY = re.compile(r"[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]{1,2}[a-z0-9]+)*)*")
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?")
_DIRECTIVE = re.compile(r"#\s*([A-Za-z][A-Za-z0-9]*)\s*=\s*(\S+)\s*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_PLAIN_SCALAR = re.compile(r"[A-Za-z0-9_./-][A-Za-z0-9_./:@+=-]*")
# Characters a YAML double-quoted string cannot hold raw: outside YAML's printable set, or read as
# line breaks (NEL, LS, PS) or a byte-order mark. JSON escapes the ASCII control characters itself.
_YAML_UNSAFE = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[\u2028\u2029\ufeff]")


# --- the draft: what init found, before it is written as YAML --------------------------


@dataclass(frozen=True)
class SourceDraft:
    """Platforms of a variant's tags built from another Dockerfile (the spec's `platform-sources`)."""

    name: str
    dockerfile: str
    platforms: tuple[str, ...]
    args: tuple[tuple[str, str], ...] = ()  # those that differ from the variant's
    targets: tuple[tuple[str, str], ...] = ()  # published stage -> Dockerfile stage, where the names differ


@dataclass(frozen=True)
class VariantDraft:
    name: str
    dockerfile: str
    stages: tuple[str, ...]
    platforms: tuple[str, ...]
    suffixes: tuple[str, ...] | None = None  # (suffix, *aliases); None: bakegen's default "-NAME"
    args: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    comments: tuple[tuple[str, str], ...] = ()  # (key, comment) for lines of this variant
    sources: tuple[SourceDraft, ...] = ()


@dataclass(frozen=True)
class SpecDraft:
    repository: str
    repository_guessed: bool
    context: str
    stages: tuple[str, ...]
    tags: tuple[str, ...]
    variants: tuple[VariantDraft, ...]
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    header: tuple[str, ...] = ()  # comment lines under the generated-by line
    stages_comment: str = ""
    platforms_comment: str = ""


def guess_repository(directory: Path) -> str:
    """A docker.io-style short name from a directory name: lowercase, reference-safe, never a host."""
    name = re.sub(r"[^a-z0-9._-]+", "-", directory.absolute().name.lower())
    name = re.sub(r"[._-]{2,}", "-", name).strip("._-")
    return name or "app"


def sanitize_name(text: str) -> str:
    """A variant or stage name bakegen accepts (letters, digits, - and _), lowercase."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).lstrip("_-")


def _relative(path: Path, start: Path) -> str:
    relative = os.path.relpath(path.absolute(), start.absolute())
    return PurePosixPath(Path(relative)).as_posix()


def _shown(path: Path) -> str:
    """A path for messages: relative to the working directory when under it, else absolute."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix() or "."
    except ValueError:
        return absolute.as_posix()


def _predefined(arg: str) -> bool:
    return arg in PREDEFINED_ARGS or arg.startswith(PREDEFINED_ARG_PREFIXES)


class _Names:
    """Variant names that are valid, distinct, and make distinct target names (STAGE-VARIANT)."""

    def __init__(self, stages: Iterable[str]) -> None:
        self.stages = set(stages)
        self.variants: set[str] = set()
        self.targets: set[str] = set()

    def take(self, wanted: str, stages: Iterable[str], prefixes: Sequence[str] = ()) -> str:
        stages = list(stages)
        base = sanitize_name(wanted) or DEFAULT_VARIANT
        candidates = [base, *(f"{sanitize_name(p)}-{base}" for p in prefixes if sanitize_name(p))]
        if base in self.stages or base in RESERVED_VARIANT_NAMES:
            candidates = [f"{base}-variant", *candidates[1:]]
        candidates += [f"{candidates[0]}-{n}" for n in range(2, 1000)]
        for name in candidates:
            targets = {f"{stage}-{name}" for stage in stages}
            if name in self.variants or name in self.stages or name in RESERVED_VARIANT_NAMES or targets & self.targets:
                continue
            if targets & (self.stages | self.variants) or name in self.targets:
                continue  # a target named like a group (stage or variant) would clash in the bake file
            self.variants.add(name)
            self.targets |= targets
            return name
        raise BakegenError(f"cannot find a free variant name for {wanted!r}")
