"""The resolved build plan: frozen dataclasses, the only thing every emitter reads.

Pure: nothing here reads the environment, the file system or the command line. Values
that come from outside (the environment, `--var`) are passed in; lookups that fail
raise `PlanLookupError`s that carry data, and the commands word them for the user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from bakegen import annotation_levels
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
    source: str = ""  # "" for the variant's own Dockerfile, else the name of the platform source it builds
    dockerfile_target: str = ""  # the Dockerfile stage bake builds, where it is not named like `stage`
    size_budget: int | None = None  # bytes, compressed (layers + config as the registry manifest lists them)

    @property
    def bake_target(self) -> str:
        """The Dockerfile stage (bake's `target`)."""
        return self.dockerfile_target or self.stage

    @property
    def tag_owner(self) -> str:
        """The target whose tags this one's images join: a platform source's images are published
        in one manifest list with the variant's own (STAGE-VARIANT)."""
        return f"{self.stage}-{self.variant}" if self.source else self.name

    # Labels and annotations whose values use bake variables ({VERSION}, the OCI metadata of `versioning`).
    # `labels`/`annotations` stay literal; these are resolved with the run's values (resolved_labels).
    label_templates: tuple[tuple[str, Template], ...] = ()
    annotation_templates: tuple[tuple[str, Template], ...] = ()  # (KEY with its optional level prefix, value)
    # Annotations only the merged index gets (bake's own annotations apply to the per-platform images): the OCI metadata.
    index_annotations: tuple[tuple[str, Template], ...] = ()

    def resolved_labels(self, values: Mapping[str, str]) -> dict[str, str]:
        """Every label with these values, sorted by key; a templated label that comes out empty is left out."""
        labels = dict(self.labels)
        labels.update((key, text) for key, text in ((k, resolve(v, values)) for k, v in self.label_templates) if text)
        return dict(sorted(labels.items()))

    def resolved_annotations(self, values: Mapping[str, str]) -> list[str]:
        """Every annotation as bake's KEY=VALUE with these values; a templated one that comes out empty is left out."""
        templated = [f"{key}={text}" for key, text in ((k, resolve(v, values)) for k, v in self.annotation_templates) if text]
        return [*self.annotations, *templated]

    def merged_index_annotations(self, values: Mapping[str, str]) -> dict[str, str]:
        """The annotations of a merged index of this target: the spec's `index:` level ones and the index-only ones."""
        extra = {key: text for key, text in ((k, resolve(v, values)) for k, v in self.index_annotations) if text}
        return {**self.level_annotations("index", values), **extra}

    def manifest_annotations(self, values: Mapping[str, str]) -> dict[str, str]:
        """The annotations of each image manifest (what buildx applies to an annotation without a level prefix)."""
        return self.level_annotations("manifest", values)

    def level_annotations(self, level: str, values: Mapping[str, str]) -> dict[str, str]:
        """KEY -> VALUE of the annotations at one level, read as buildx reads them (no prefix: manifest)."""
        return annotation_levels.at_level(self.resolved_annotations(values), level)


@dataclass(frozen=True)
class Group:
    name: str
    targets: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class WorkflowSettings:
    name: str = "Publish Docker images"
    runners: tuple[tuple[str, str], ...] = (
        ("linux/amd64", "ubuntu-24.04"),
        ("linux/arm64", "ubuntu-24.04-arm"),
        ("linux/s390x", "ubuntu-24.04-s390x"),  # IBM's native runners, as llama.cpp uses
    )
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
        # actions/setup-python has no builds for s390x (or ppc64le): Debian's Python there.
        default = "apt" if runner.endswith(("-s390x", "-ppc64le")) else "setup-python"
        return dict(self.python).get(runner, default)


VersionSchemeName = Literal["build-number", "git-tag", "sha"]
VersionFact = Literal["version", "created", "revision", "source"]
# The bake variables that carry the git facts of `versioning` (the version has its own, `Versioning.variable`).
FACT_VARIABLES: dict[str, str] = {"created": "OCI_CREATED", "revision": "OCI_REVISION", "source": "OCI_SOURCE"}
OCI_PREFIX = "org.opencontainers.image."


@dataclass(frozen=True)
class Versioning:
    """The spec's `versioning:` block: how the version and the OCI metadata come from git."""

    scheme: VersionSchemeName = "build-number"
    default_branch: str | None = None
    variable: str = "VERSION"
    strip_v: bool = True
    semver_aliases: bool = True
    source_url: str | None = None
    metadata: bool = True  # OCI labels, manifest and index annotations on every target
    args: tuple[tuple[str, VersionFact], ...] = ()  # Dockerfile ARG -> the fact it gets

    def fact_variable(self, fact: str) -> str:
        """The bake variable holding a fact (version, created, revision, source)."""
        return self.variable if fact == "version" else FACT_VARIABLES[fact]

    def alias_variables(self) -> tuple[str, ...]:
        """git-tag with semver aliases: the variables of the MAJOR.MINOR and MAJOR aliases (empty when there is none,
        so a tag that uses one is left out, as every conditional tag)."""
        return (f"{self.variable}_MAJOR_MINOR", f"{self.variable}_MAJOR") if self.scheme == "git-tag" and self.semver_aliases else ()


@dataclass(frozen=True)
class BuildPlan:
    spec_path: str
    repository_variable: str
    variables: tuple[Variable, ...]
    targets: tuple[Target, ...]
    groups: tuple[Group, ...]
    workflow: WorkflowSettings = field(default_factory=WorkflowSettings)
    versioning: Versioning | None = None
    # Values computed from git by the commands (commands/common.py) for the versioning variables: they
    # replace the defaults, and an environment variable that is set and not empty, or --var, wins over them.
    computed: tuple[tuple[str, str], ...] = ()

    @property
    def registry(self) -> str:
        """The registry host of the default repository (docker.io when it names none)."""
        repository = next(v.default for v in self.variables if v.name == self.repository_variable)
        first = repository.split("/", 1)[0]
        return first if "/" in repository and ("." in first or ":" in first or first == "localhost") else "docker.io"

    def values(self, overrides: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
        """Variable values as bake sees them: default (or the value computed from git), then the environment, then overrides."""
        computed = dict(self.computed)
        values = {
            v.name: (environ.get(v.name) or computed[v.name]) if v.name in computed else environ.get(v.name, v.default)
            for v in self.variables
        }
        for name, value in overrides.items():
            if name not in values:
                raise UnknownVariable(name, values)
            values[name] = value
        if self.versioning and self.versioning.variable in overrides:
            # An explicit version gets no aliases from git (as with VERSION in the environment): only those set too.
            values |= {alias: overrides.get(alias, "") for alias in self.versioning.alias_variables()}
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

    def select(self, names: Iterable[str], *, whole_tags: bool = True) -> list[Target]:
        """Targets named directly or through groups, in plan order; none means `default`. With
        `whole_tags`, a target brings its platform sources (bake itself would build only the one named)."""
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
        # A tag is one manifest list of every platform: choosing it chooses its platform sources too.
        return [t for t in self.targets if t.name in chosen or (whole_tags and t.tag_owner in chosen)]

    def variables_feeding(self, arg: str) -> dict[str, list[str]]:
        """The bake variables that give the Dockerfile ARG `arg` its value, each with the variants it feeds."""
        feeding: dict[str, list[str]] = {}
        for target in self.targets:
            for name, value in target.args:
                if name == arg:
                    for variable in template_variables(value):
                        variants = feeding.setdefault(variable, [])
                        if target.variant not in variants:
                            variants.append(target.variant)
        return feeding

    def tag_members(self, owner: str) -> list[Target]:
        """The targets whose images are published together under `owner`'s tags."""
        return [t for t in self.targets if t.tag_owner == owner]
