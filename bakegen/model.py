"""The resolved build plan: frozen dataclasses, the only thing every emitter reads.

Pure: nothing here reads the environment, the file system or the command line. Values
that come from outside (the environment, `--var`) are passed in; lookups that fail
raise `PlanLookupError`s that carry data, and the commands word them for the user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from bakegen.template import Template, Text, joined, resolve, template_variables


class PlanLookupError(Exception):
    """A name that is not in the plan (a variable, a target, an image)."""


class UnknownVariable(PlanLookupError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name, self.known = name, tuple(sorted(known))
        super().__init__(name)


class UnknownSelection(PlanLookupError):
    def __init__(self, name: str, groups: Iterable[str]) -> None:
        self.name, self.groups = name, tuple(groups)
        super().__init__(name)


class NoImageReference(PlanLookupError):
    """Every tag of the target came out empty with these values, so it has no local name."""

    def __init__(self, target: str, variables: Iterable[str]) -> None:
        self.target, self.variables = target, tuple(variables)
        super().__init__(target)


@dataclass(frozen=True)
class Variable:
    """A bake variable: overridable from the environment or `--var NAME=VALUE`."""

    name: str
    default: str
    description: str = ""


CheckKind = Literal["run", "http", "file", "env", "label"]


@dataclass(frozen=True)
class SmokeCheck:
    """One smoke check of an image (see the schema's `check` for each field)."""

    name: str
    kind: CheckKind
    requires_gpu: bool = False
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()
    timeout: float = 60.0
    exit_code: int = 0
    stdout: str | None = None
    stderr: str | None = None
    port: int = 0
    http_path: str = "/health"
    status: int = 200
    body: str | None = None
    file: str = ""
    expected: tuple[tuple[str, Template], ...] = ()


@dataclass(frozen=True)
class Cache:
    """Where a target's build cache lives: a registry ref, or a GitHub Actions cache scope."""

    kind: Literal["registry", "gha"]
    ref: Template = ()
    scope: str = ""
    mode: str = "max"

    def source(self) -> Template:
        """The `cache-from` entry."""
        if self.kind == "gha":
            return (Text(f"type=gha,scope={self.scope}"),)
        return joined((Text("type=registry,ref="), *self.ref))

    def destination(self) -> Template:
        """The `cache-to` entry."""
        return joined((*self.source(), Text(f",mode={self.mode}")))

    def per_arch(self, arch: str, variant: str) -> Cache:
        """One cache per variant and arch, so runners of different arches never overwrite each other's."""
        if self.kind == "gha":
            return Cache("gha", scope=f"{variant}-{arch}", mode=self.mode)
        return Cache("registry", ref=joined((*self.ref, Text(f"-{arch}"))), mode=self.mode)


@dataclass(frozen=True)
class Target:
    """One bake target: a stage of a variant, for one or more platforms."""

    name: str
    variant: str
    stage: str
    context: str
    dockerfile: str
    platforms: tuple[str, ...]
    args: tuple[tuple[str, Template], ...]
    tags: tuple[Template, ...]
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[str, ...] = ()
    cache: Cache | None = None
    export_cache: bool = True
    checks: tuple[SmokeCheck, ...] = ()
    free_disk: bool = False
    size_budget: int | None = None  # bytes, compressed (layers + config as the registry manifest lists them)


@dataclass(frozen=True)
class Group:
    name: str
    targets: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class WorkflowSettings:
    name: str = "Publish Docker images"
    runners: tuple[tuple[str, str], ...] = (("linux/amd64", "ubuntu-24.04"), ("linux/arm64", "ubuntu-24.04-arm"))
    schedule: str | None = "12 4 * * *"
    tag_patterns: tuple[str, ...] = ("b*",)
    version_variable: str = "VERSION"
    smoke: bool = True
    install: str | None = None  # None: pip install this bakegen version (or this checkout, in bakegen's own repository)
    pull_request: bool = True  # pull requests build and smoke-test, never push
    pull_request_paths: tuple[str, ...] = ()  # empty: every pull request
    repository: str | None = None  # GitHub OWNER/NAME that may publish; None: taken from a ghcr.io image repository
    python: tuple[tuple[str, str], ...] = ()  # runner label -> setup-python | apt | system
    attest: bool = True

    def runner(self, platform: str) -> str:
        return dict(self.runners).get(platform, "ubuntu-24.04")

    def python_setup(self, runner: str) -> str:
        """How a runner gets Python: actions/setup-python, Debian packages, or the Python it has."""
        return dict(self.python).get(runner, "setup-python")


@dataclass(frozen=True)
class BuildPlan:
    spec_path: str
    repository_variable: str
    variables: tuple[Variable, ...]
    targets: tuple[Target, ...]
    groups: tuple[Group, ...]
    workflow: WorkflowSettings = field(default_factory=WorkflowSettings)

    @property
    def registry(self) -> str:
        """The registry host of the default repository (docker.io when it names none)."""
        repository = next(v.default for v in self.variables if v.name == self.repository_variable)
        first = repository.split("/", 1)[0]
        return first if "/" in repository and ("." in first or ":" in first or first == "localhost") else "docker.io"

    def values(self, overrides: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
        """Variable values as bake sees them: default, then the environment, then overrides."""
        values = {v.name: environ.get(v.name, v.default) for v in self.variables}
        for name, value in overrides.items():
            if name not in values:
                raise UnknownVariable(name, values)
            values[name] = value
        return values

    def tag_conditions(self, tag: Template) -> list[str]:
        """The one rule for conditional tags: a tag is left out while any variable it uses,
        other than the repository, is empty."""
        return [name for name in template_variables(tag) if name != self.repository_variable]

    def resolved_tags(self, target: Target, values: Mapping[str, str]) -> list[str]:
        """A target's tags at bake time, in spec order."""
        return [resolve(tag, values) for tag in target.tags if all(values[n] for n in self.tag_conditions(tag))]

    def local_image(self, target: Target, values: Mapping[str, str]) -> str:
        """The name a loaded image of `target` goes by: its first tag."""
        tags = self.resolved_tags(target, values)
        if not tags:
            raise NoImageReference(target.name, dict.fromkeys(n for tag in target.tags for n in self.tag_conditions(tag)))
        return tags[0]

    def select(self, names: Iterable[str]) -> list[Target]:
        """Targets named directly or through groups, in plan order; none means `default`."""
        names = list(names) or ["default"]
        by_target = {t.name for t in self.targets}
        by_group = {g.name: g for g in self.groups}
        chosen: set[str] = set()
        for name in names:
            if name in by_target:
                chosen.add(name)
            elif name in by_group:
                chosen.update(by_group[name].targets)
            else:
                raise UnknownSelection(name, by_group)
        return [t for t in self.targets if t.name in chosen]
