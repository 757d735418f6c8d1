"""The resolved build plan: plain typed dataclasses, the only thing every emitter reads.

`build_plan(spec)` turns a schema-valid spec into targets (one per variant x stage), bake
variables and groups, and reports the semantic problems a schema cannot see: variable
defaults that disagree, unknown placeholders, duplicate tags, bad platforms, names
that collide, strings buildx would change.
"""

from __future__ import annotations

import os
import string
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from bakegen.errors import BakegenError, Diagnostic
from bakegen.spec import Spec, SpecPath

# --- templates --------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """Literal text of a template."""

    value: str


@dataclass(frozen=True)
class Var:
    """A reference to a bake variable, resolved at bake time."""

    name: str


Part = Text | Var
Template = tuple[Part, ...]


def template_variables(template: Template) -> list[str]:
    return [part.name for part in template if isinstance(part, Var)]


def resolve(template: Template, values: Mapping[str, str]) -> str:
    return "".join(part.value if isinstance(part, Text) else values[part.name] for part in template)


def _joined(parts: Iterable[Part]) -> Template:
    """Merge neighbouring Text parts and drop empty ones, so equal templates compare equal."""
    out: list[Part] = []
    for part in parts:
        if isinstance(part, Text):
            if not part.value:
                continue
            if out and isinstance(out[-1], Text):
                out[-1] = Text(out[-1].value + part.value)
                continue
        out.append(part)
    return tuple(out)


# --- the plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    """A bake variable: overridable from the environment or `--var NAME=VALUE`."""

    name: str
    default: str
    description: str = ""


CheckKind = Literal["run", "http", "file", "env", "label"]


@dataclass(frozen=True)
class Check:
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
    cache_from: tuple[Template, ...] = ()
    cache_to: tuple[Template, ...] = ()
    checks: tuple[Check, ...] = ()
    free_disk: bool = False


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
    install: str | None = None  # None: pip install this bakegen version

    def runner(self, platform: str) -> str:
        return dict(self.runners).get(platform, "ubuntu-24.04")


@dataclass(frozen=True)
class BuildPlan:
    spec_path: str
    repository_variable: str
    variables: tuple[Variable, ...]
    targets: tuple[Target, ...]
    groups: tuple[Group, ...]
    workflow: WorkflowSettings = field(default_factory=WorkflowSettings)

    def values(self, overrides: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Variable values as bake sees them: default, then environment, then --var."""
        environ = os.environ if environ is None else environ
        values = {v.name: environ.get(v.name, v.default) for v in self.variables}
        for name, value in (overrides or {}).items():
            if name not in values:
                known = ", ".join(sorted(values))
                raise BakegenError(f"--var {name}: not a variable of this spec (known: {known})")
            values[name] = value
        return values

    def resolved_tags(self, target: Target, values: Mapping[str, str]) -> list[str]:
        """A target's tags at bake time: a tag whose variables are empty is left out."""
        tags = []
        for tag in target.tags:
            conditions = [n for n in template_variables(tag) if n != self.repository_variable]
            if all(values[n] for n in conditions):
                tags.append(resolve(tag, values))
        return tags

    def select(self, names: Iterable[str]) -> list[Target]:
        """Targets named directly or through groups, in plan order; none means `default`."""
        names = list(names) or ["default"]
        by_target = {t.name: t for t in self.targets}
        by_group = {g.name: g for g in self.groups}
        chosen: set[str] = set()
        for name in names:
            if name in by_target:
                chosen.add(name)
            elif name in by_group:
                chosen.update(by_group[name].targets)
            else:
                raise BakegenError(
                    f"{name!r} is neither a target nor a group of {self.spec_path} "
                    f"(groups: {', '.join(by_group)}; run `bakegen plan` to list targets)"
                )
        return [t for t in self.targets if t.name in chosen]


# --- building the plan ------------------------------------------------------------------

KNOWN_OS = {"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix", "wasip1", "js"}
KNOWN_ARCH = {
    "amd64",
    "arm64",
    "arm",
    "386",
    "ppc64le",
    "ppc64",
    "s390x",
    "riscv64",
    "mips64le",
    "mips64",
    "mipsle",
    "mips",
    "loong64",
    "wasm",
}
ARCH_VARIANTS = {
    "arm": {"v5", "v6", "v7", "v8"},
    "arm64": {"v8", "v9"},
    "amd64": {"v1", "v2", "v3", "v4"},
    "riscv64": {"rva20u64", "rva22u64"},
}
BUILTIN_PLACEHOLDERS = ("stage", "variant", "suffix")


def build_plan(spec: Spec) -> tuple[BuildPlan, list[Diagnostic]]:
    """Resolve a spec into a BuildPlan. Returns the plan and the problems found (errors and warnings)."""
    return _PlanBuilder(spec).build()


class _PlanBuilder:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.data: dict[str, Any] = spec.data
        self.problems: list[Diagnostic] = []
        self.variables: dict[str, Variable] = {}
        self._variable_origin: dict[str, SpecPath] = {}

    def error(self, path: SpecPath, message: str, *, key: bool = False) -> None:
        self.problems.append(self.spec.diagnostic(path, message, key=key))

    def build(self) -> tuple[BuildPlan, list[Diagnostic]]:
        data = self.data
        repo_var = data["image"].get("variable", "REPO")
        self._declare(repo_var, data["image"]["repository"], ("image", "repository"), "Image repository (without tag).")
        for name, declared in data.get("variables", {}).items():
            self._declare(name, declared.get("default", ""), ("variables", name), declared.get("description", ""))
        top_args = self._args(data.get("args", {}), ("args",))

        stages: list[str] = data["stages"]
        context = data.get("context", ".")
        targets: list[Target] = []
        for variant, vdata in data["variants"].items():
            vpath: SpecPath = ("variants", variant)
            args = {**top_args, **self._args(vdata.get("args", {}), (*vpath, "args"))}
            variant_stages = vdata.get("stages", stages)
            for index, stage in enumerate(variant_stages):
                if stage not in stages:
                    self.error((*vpath, "stages", index), f"stage {stage!r} is not in the top-level stages ({', '.join(stages)})")
            for platform_index, platform in enumerate(vdata.get("platforms", ["linux/amd64"])):
                self._check_platform(platform, (*vpath, "platforms", platform_index))
            suffixes = [vdata.get("suffix", f"-{variant}"), *vdata.get("aliases", [])]
            labels = {**data.get("labels", {}), **vdata.get("labels", {})}
            for stage in (s for s in stages if s in variant_stages):
                builtins = {"stage": stage, "variant": variant}
                targets.append(
                    Target(
                        name=f"{stage}-{variant}",
                        variant=variant,
                        stage=stage,
                        context=context,
                        dockerfile=vdata["dockerfile"],
                        platforms=tuple(vdata.get("platforms", ["linux/amd64"])),
                        args=tuple(sorted(args.items())),
                        tags=tuple(self._tags(builtins, suffixes, repo_var)),
                        labels=tuple(sorted(labels.items())),
                        annotations=tuple(f"{k}={v}" for k, v in sorted(data.get("annotations", {}).items())),
                        cache_from=self._cache(builtins, repo_var, export=False),
                        cache_to=self._cache(builtins, repo_var, export=True),
                        checks=self._checks(stage, variant),
                        free_disk=bool(vdata.get("free-disk", False)),
                    )
                )
        groups = self._groups(targets, stages)
        self._check_duplicate_tags(targets, repo_var)
        self._check_unknown_check_stages(stages)
        self._check_nfc(self.data, ())
        self.problems = list(dict.fromkeys(self.problems))  # a template error repeats per target
        plan = BuildPlan(
            spec_path=str(self.spec.path),
            repository_variable=repo_var,
            variables=tuple(self.variables.values()),
            targets=tuple(targets),
            groups=tuple(groups),
            workflow=self._workflow(),
        )
        return plan, self.problems

    # -- variables and args --

    def _declare(self, name: str, default: str, path: SpecPath, description: str = "") -> None:
        if name in self.variables:
            if self.variables[name].default != default:
                first = self.spec.where(self._variable_origin[name])[0]
                self.error(
                    path,
                    f"bake variable {name} already has the default {self.variables[name].default!r} (line {first}); "
                    f"give this one its own variable, e.g. `variable: {_suggest_variable(path, name)}`",
                )
            elif description and not self.variables[name].description:
                self.variables[name] = Variable(name, default, description)
            return
        self.variables[name] = Variable(name, default, description)
        self._variable_origin[name] = path

    def _args(self, args: dict[str, Any], path: SpecPath) -> dict[str, Template]:
        resolved: dict[str, Template] = {}
        for name, value in args.items():
            apath = (*path, name)
            if isinstance(value, str):
                self._declare(name, value, apath)
                resolved[name] = (Var(name),)
                continue
            variable = value.get("variable", name)
            if variable is None:
                if "value" not in value:
                    self.error(apath, "an arg with `variable: null` needs a `value`")
                resolved[name] = (Text(value.get("value", "")),)
                continue
            if "value" in value:
                self._declare(variable, value["value"], apath, value.get("description", ""))
            elif variable not in self.variables:
                self.error(apath, f"needs a `value`, or `variable` must name a declared variable (known: {', '.join(self.variables)})")
                continue
            resolved[name] = (Var(variable),)
        return resolved

    # -- templates --

    def _template(self, text: str, path: SpecPath, builtins: Mapping[str, str]) -> Template | None:
        parts: list[Part] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            self.error(path, f"bad template {text!r}: {exc} (write {{{{ and }}}} for literal braces)")
            return None
        for literal, field_name, format_spec, conversion in parsed:
            parts.append(Text(literal))
            if field_name is None:
                continue
            if format_spec or conversion:
                self.error(path, f"placeholder {{{field_name}}} takes no format (in {text!r})")
                return None
            if field_name in builtins:
                parts.append(Text(builtins[field_name]))
            elif field_name in self.variables:
                parts.append(Var(field_name))
            else:
                known = ", ".join([*(f"{{{b}}}" for b in builtins), *(f"{{{v}}}" for v in self.variables)])
                self.error(path, f"unknown placeholder {{{field_name}}} in {text!r}; known: {known}")
                return None
        return _joined(parts)

    def _tags(self, builtins: Mapping[str, str], suffixes: list[str], repo_var: str) -> Iterator[Template]:
        seen: set[Template] = set()
        for index, text in enumerate(self.data.get("tags", ["{stage}{suffix}"])):
            for suffix in suffixes if "{suffix}" in text else suffixes[:1]:
                template = self._template(text, ("tags", index), {**builtins, "suffix": suffix})
                if template is None:
                    break
                tag = _joined((Var(repo_var), Text(":"), *template))
                if tag not in seen:
                    seen.add(tag)
                    yield tag

    def _cache(self, builtins: Mapping[str, str], repo_var: str, *, export: bool) -> tuple[Template, ...]:
        cache = self.data.get("cache", {"type": "none"})
        mode = f",mode={cache.get('mode', 'max')}" if export else ""
        if cache["type"] == "registry":
            text = cache.get("ref", "{repository}:buildcache-{variant}")
            names = {**builtins, "suffix": "", "repository": "{repository}"}
            ref = self._template(text, ("cache", "ref"), names)
            if ref is None:
                return ()
            # {repository} is the repository variable, resolved at bake time like the tags.
            parts: list[Part] = []
            for part in ref:
                if isinstance(part, Text) and "{repository}" in part.value:
                    pieces = part.value.split("{repository}")
                    for i, piece in enumerate(pieces):
                        if i:
                            parts.append(Var(repo_var))
                        parts.append(Text(piece))
                else:
                    parts.append(part)
            return (_joined((Text("type=registry,ref="), *parts, Text(mode))),)
        if cache["type"] == "gha":
            return (_joined((Text(f"type=gha,scope={builtins['variant']}-{builtins['stage']}{mode}"),)),)
        return ()

    # -- checks --

    def _checks(self, stage: str, variant: str) -> tuple[Check, ...]:
        found: list[Check] = []
        sources: list[tuple[SpecPath, list[dict[str, Any]]]] = [
            (("checks", stage), self.data.get("checks", {}).get(stage, [])),
            (("variants", variant, "checks", stage), self.data["variants"][variant].get("checks", {}).get(stage, [])),
        ]
        names: set[str] = set()
        for path, items in sources:
            for index, item in enumerate(items):
                if item["name"] in names:
                    self.error((*path, index, "name"), f"check {item['name']!r} is defined twice for {stage}-{variant}")
                    continue
                names.add(item["name"])
                found.append(self._check(item, (*path, index), stage, variant))
        return tuple(found)

    def _check(self, item: dict[str, Any], path: SpecPath, stage: str, variant: str) -> Check:
        kind: CheckKind = next(k for k in ("run", "http", "file", "env", "label") if k in item)  # type: ignore[assignment]
        common: dict[str, Any] = {
            "name": item["name"],
            "kind": kind,
            "requires_gpu": item.get("requires") == "gpu",
            "command": tuple(item.get("command", ())),
            "entrypoint": tuple(item["entrypoint"]) if "entrypoint" in item else None,
            "environment": tuple(sorted(item.get("environment", {}).items())),
            "timeout": float(item.get("timeout", 60)),
        }
        if kind == "run":
            run = item["run"]
            return Check(**common, exit_code=run.get("exit-code", 0), stdout=run.get("stdout"), stderr=run.get("stderr"))
        if kind == "http":
            http = item["http"]
            return Check(
                **common, port=http["port"], http_path=http.get("path", "/health"), status=http.get("status", 200), body=http.get("body")
            )
        if kind == "file":
            return Check(**common, file=item["file"])
        builtins = {"stage": stage, "variant": variant}
        expected = []
        for key, text in sorted(item[kind].items()):
            template = self._template(text, (*path, kind, key), builtins)
            if template is not None:
                expected.append((key, template))
        return Check(**common, expected=tuple(expected))

    def _check_unknown_check_stages(self, stages: list[str]) -> None:
        places: list[tuple[SpecPath, dict[str, Any]]] = [(("checks",), self.data.get("checks", {}))]
        places += [(("variants", v, "checks"), d.get("checks", {})) for v, d in self.data["variants"].items()]
        for path, checks in places:
            for stage in checks:
                if stage not in stages:
                    self.error((*path, stage), f"checks for unknown stage {stage!r} (stages: {', '.join(stages)})", key=True)

    # -- cross-target checks --

    def _groups(self, targets: list[Target], stages: list[str]) -> list[Group]:
        groups = [Group("default", tuple(t.name for t in targets), "Every image of the matrix.")]
        for variant in self.data["variants"]:
            groups.append(Group(variant, tuple(t.name for t in targets if t.variant == variant), f"Every stage of the {variant} variant."))
        for stage in stages:
            if stage in self.data["variants"]:
                self.error(("stages",), f"{stage!r} is both a stage and a variant; group names would collide")
                continue
            members = tuple(t.name for t in targets if t.stage == stage)
            if members:
                groups.append(Group(stage, members, f"The {stage} stage of every variant."))
        seen: dict[str, str] = {}
        for target in targets:
            if target.name in seen:
                self.error(
                    ("variants", target.variant),
                    f"target name {target.name!r} is produced twice (also by variant {seen[target.name]!r})",
                    key=True,
                )
            seen[target.name] = target.variant
        for group in groups:
            if group.name in seen:
                self.error(("variants",), f"group {group.name!r} has the same name as a target")
        return groups

    def _check_duplicate_tags(self, targets: list[Target], repo_var: str) -> None:
        owner: dict[Template, str] = {}
        for target in targets:
            for tag in target.tags:
                if tag in owner and owner[tag] != target.name:
                    shown = resolve(tag, {v: "{" + v + "}" for v in template_variables(tag)})
                    self.error(
                        ("variants", target.variant),
                        f"tag {shown} is given to both {owner[tag]} and {target.name}; make the tag templates or variant suffixes distinct",
                        key=True,
                    )
                owner.setdefault(tag, target.name)

    def _check_platform(self, platform: str, path: SpecPath) -> None:
        os_name, arch, *rest = platform.split("/")
        if os_name not in KNOWN_OS:
            self.error(path, f"unknown OS {os_name!r} in platform {platform!r} (e.g. linux/amd64, linux/arm64)")
        elif arch not in KNOWN_ARCH:
            self.error(path, f"unknown architecture {arch!r} in platform {platform!r} (known: {', '.join(sorted(KNOWN_ARCH))})")
        elif rest and rest[0] not in ARCH_VARIANTS.get(arch, set()):
            self.error(path, f"unknown variant {rest[0]!r} for {arch} in platform {platform!r}")

    def _check_nfc(self, value: Any, path: SpecPath) -> None:
        # HCL (and so buildx) normalises every string to Unicode NFC; a string that is not
        # NFC would silently come out of bake different from the spec.
        if isinstance(value, str):
            if not unicodedata.is_normalized("NFC", value):
                self.error(path, f"{value!r} is not in Unicode NFC form; buildx would change it to {unicodedata.normalize('NFC', value)!r}")
        elif isinstance(value, dict):
            for key, item in value.items():
                if not unicodedata.is_normalized("NFC", key):
                    self.error((*path, key), "key is not in Unicode NFC form; buildx would change it", key=True)
                self._check_nfc(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._check_nfc(item, (*path, index))

    def _workflow(self) -> WorkflowSettings:
        raw = self.data.get("workflow", {})
        defaults = WorkflowSettings()
        runners = dict(defaults.runners)
        runners.update(raw.get("runners", {}))
        return WorkflowSettings(
            name=raw.get("name", defaults.name),
            runners=tuple(sorted(runners.items())),
            schedule=raw.get("schedule", defaults.schedule),
            tag_patterns=tuple(raw.get("tags", defaults.tag_patterns)),
            version_variable=raw.get("version-variable", defaults.version_variable),
            smoke=raw.get("smoke", defaults.smoke),
            install=raw.get("install"),
        )


def _suggest_variable(path: SpecPath, name: str) -> str:
    if len(path) >= 2 and path[0] == "variants":
        prefix = "".join(c if c.isalnum() else "_" for c in str(path[1])).upper()
        return f"{prefix}_{name}"
    return f"OTHER_{name}"


# --- platform slices: how one machine (or one CI runner) builds part of the plan ---------


def platform_suffix(platform: str) -> str:
    """Tag suffix of a per-platform image: linux/amd64 -> amd64, linux/arm/v7 -> armv7."""
    os_name, *rest = platform.split("/")
    return "".join(rest) if os_name == "linux" else "-".join([os_name, *rest])


def primary_tag(plan: BuildPlan, target: Target) -> Template:
    """The first tag that needs no variable but the repository: always present."""
    for tag in target.tags:
        if all(name == plan.repository_variable for name in template_variables(tag)):
            return tag
    return target.tags[0]


def platform_tag(plan: BuildPlan, target: Target, platform: str) -> Template:
    """Where a per-platform build is pushed before `bakegen merge`: TAG-ARCH."""
    return _joined((*primary_tag(plan, target), Text(f"-{platform_suffix(platform)}")))


def only(plan: BuildPlan, targets: Iterable[Target]) -> BuildPlan:
    """The plan restricted to some targets (groups keep only those members)."""
    keep = {t.name for t in targets}
    groups = tuple(Group(g.name, tuple(n for n in g.targets if n in keep), g.description) for g in plan.groups)
    return replace(plan, targets=tuple(t for t in plan.targets if t.name in keep), groups=tuple(g for g in groups if g.targets))


def for_platform(plan: BuildPlan, platform: str, *, platform_tags: bool) -> BuildPlan:
    """Targets that build `platform`, narrowed to it; with platform_tags each is tagged TAG-ARCH only."""
    targets = []
    for target in plan.targets:
        if platform not in target.platforms:
            continue
        tags = (platform_tag(plan, target, platform),) if platform_tags else target.tags
        targets.append(replace(target, platforms=(platform,), tags=tags))
    return replace(only(plan, targets), targets=tuple(targets))


def for_native(plan: BuildPlan, native: str) -> BuildPlan:
    """Each multi-platform target narrowed to the native platform (or its first), as `docker build` does."""
    targets = tuple(
        replace(t, platforms=(native if native in t.platforms else t.platforms[0],)) if len(t.platforms) > 1 else t for t in plan.targets
    )
    return replace(plan, targets=targets)


def without_cache_export(plan: BuildPlan) -> BuildPlan:
    """The plan with no cache-to: the docker driver cannot export a build cache."""
    return replace(plan, targets=tuple(replace(t, cache_to=()) for t in plan.targets))


def platforms_of(targets: Iterable[Target]) -> list[str]:
    return list(dict.fromkeys(p for t in targets for p in t.platforms))
