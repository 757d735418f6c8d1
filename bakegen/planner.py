"""The compiler from a schema-valid spec to a BuildPlan, and the semantic checks a schema cannot make.

`build_plan(spec)` makes one target per variant x stage, the bake variables and the groups,
and reports (as Diagnostics, never exceptions) variable defaults that disagree, unknown
placeholders, duplicate tags, bad platforms, names that collide, strings buildx would change.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from bakegen.errors import Diagnostic
from bakegen.model import (
    OCI_PREFIX,
    BuildPlan,
    Cache,
    CheckKind,
    Group,
    SmokeCheck,
    Target,
    Variable,
    Versioning,
    WorkflowSettings,
)
from bakegen.platforms import platform_problem
from bakegen.spec import Spec, SpecPath
from bakegen.template import Part, Template, Text, Var, joined, shown

CHECK_KINDS: tuple[CheckKind, ...] = ("run", "http", "file", "env", "label")


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
        versioning = self._versioning()
        top_args = self._args(data.get("args", {}), ("args",))
        version_args = self._version_args(versioning, top_args)

        stages: list[str] = data["stages"]
        context = data.get("context", ".")
        targets: list[Target] = []
        for variant, vdata in data["variants"].items():
            vpath: SpecPath = ("variants", variant)
            variant_args = self._args(vdata.get("args", {}), (*vpath, "args"))
            args = {**top_args, **version_args, **variant_args}
            for name in sorted(version_args.keys() & variant_args.keys()):
                self.error((*vpath, "args", name), f"ARG {name} also gets a git fact from versioning.args; set it in one place")
            variant_stages = vdata.get("stages", stages)
            for index, stage in enumerate(variant_stages):
                if stage not in stages:
                    self.error((*vpath, "stages", index), f"stage {stage!r} is not in the top-level stages ({', '.join(stages)})")
            platforms = vdata.get("platforms", ["linux/amd64"])
            for index, platform in enumerate(platforms):
                problem = platform_problem(platform)
                if problem:
                    self.error((*vpath, "platforms", index), problem)
            suffixes = [vdata.get("suffix", f"-{variant}"), *vdata.get("aliases", [])]
            labels = {**data.get("labels", {}), **vdata.get("labels", {})}
            sources = self._platform_sources(variant, vdata, args, platforms, variant_stages)
            for stage in (s for s in stages if s in variant_stages):
                builtins = {"stage": stage, "variant": variant}
                fixed_labels, label_templates = self._metadata_templates(labels, builtins, variant, "labels")
                annotations = dict(data.get("annotations", {}))
                fixed_annotations, annotation_templates = self._metadata_templates(annotations, builtins, variant, "annotations")
                oci_labels, oci_annotations = self._oci_metadata(versioning, labels.keys(), annotations.keys())
                primary = Target(
                    name=f"{stage}-{variant}",
                    variant=variant,
                    stage=stage,
                    context=context,
                    dockerfile=vdata["dockerfile"],
                    platforms=tuple(platforms),
                    args=tuple(sorted(args.items())),
                    tags=tuple(self._tags(builtins, suffixes, repo_var)),
                    labels=tuple(sorted(fixed_labels.items())),
                    annotations=tuple(f"{k}={v}" for k, v in sorted(fixed_annotations.items())),
                    label_templates=tuple(sorted({**oci_labels, **label_templates}.items())),
                    annotation_templates=tuple(sorted({**oci_annotations, **annotation_templates}.items())),
                    index_annotations=tuple(sorted(oci_annotations.items())),  # the merge puts the OCI metadata on the index too
                    cache=self._cache(builtins, repo_var),
                    checks=self._checks(stage, variant),
                    free_disk=bool(vdata.get("free-disk", False)),
                    size_budget=self._size_budget(stage, variant),
                )
                targets.append(primary)
                # Each platform source: the same tags, labels and checks, its own Dockerfile, platforms and args.
                for name, source in sources.items():
                    targets.append(
                        replace(
                            primary,
                            name=f"{stage}-{variant}-{name}",
                            dockerfile=source["dockerfile"],
                            platforms=tuple(source["platforms"]),
                            args=tuple(sorted(source["args"].items())),
                            source=name,
                            dockerfile_target=source.get("targets", {}).get(stage, ""),
                            cache=self._cache({**builtins, "variant": f"{variant}-{name}"}, repo_var),
                        )
                    )
        groups = self._groups(targets, stages)
        self._check_duplicate_tags(targets)
        self._check_unknown_check_stages(stages)
        self._check_unknown_budget_stages(stages)
        self._check_nfc(self.data, ())
        self.problems = list(dict.fromkeys(self.problems))  # a template error repeats per target
        plan = BuildPlan(
            spec_path=str(self.spec.path),
            repository_variable=repo_var,
            variables=tuple(self.variables.values()),
            targets=tuple(targets),
            groups=tuple(groups),
            workflow=self._workflow(),
            versioning=versioning,
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

    def _platform_sources(
        self, variant: str, vdata: dict[str, Any], args: dict[str, Template], platforms: list[str], stages: list[str]
    ) -> dict[str, dict[str, Any]]:
        """The variant's platform sources, each with its args merged over the variant's; a platform
        may come from one Dockerfile only, or two images would claim one place in the manifest list."""
        built_from = dict.fromkeys(platforms, "the variant's own dockerfile")
        sources: dict[str, dict[str, Any]] = {}
        for name, source in vdata.get("platform-sources", {}).items():
            spath: SpecPath = ("variants", variant, "platform-sources", name)
            for index, platform in enumerate(source["platforms"]):
                problem = platform_problem(platform)
                if problem:
                    self.error((*spath, "platforms", index), problem)
                elif platform in built_from:
                    self.error((*spath, "platforms", index), f"{platform} is already built from {built_from[platform]}")
                built_from.setdefault(platform, f"platform source {name!r}")
            for stage in source.get("targets", {}):
                if stage not in stages:
                    self.error(
                        (*spath, "targets", stage), f"{stage!r} is not a stage of variant {variant!r} ({', '.join(stages)})", key=True
                    )
            merged = {**args, **self._args(source.get("args", {}), (*spath, "args"))}
            sources[name] = {**source, "args": merged}
        return sources

    # -- versioning (the version and the OCI metadata from git) --

    def _versioning(self) -> Versioning | None:
        raw = self.data.get("versioning")
        if raw is None:
            return None
        versioning = Versioning(
            scheme=raw.get("scheme", "build-number"),
            default_branch=raw.get("default-branch"),
            variable=raw.get("variable", "VERSION"),
            strip_v=raw.get("strip-v", True),
            semver_aliases=raw.get("semver-aliases", True),
            source_url=raw.get("source-url"),
            metadata=raw.get("metadata", True),
            args=tuple(sorted(raw.get("args", {}).items())),
        )
        reserved = {self.data["image"].get("variable", "REPO"), *(versioning.fact_variable(f) for f in ("created", "revision", "source"))}
        if versioning.variable in reserved:
            self.error(
                ("versioning", "variable"),
                f"{versioning.variable} is already the bake variable of {_filled_by(versioning.variable)}",
            )
            return None
        # The values come from git at run time (the environment wins); the defaults keep render deterministic.
        descriptions = {
            "version": f"The image version, computed from git ({versioning.scheme}) by bakegen; set it to override.",
            "created": "org.opencontainers.image.created: the commit time (SOURCE_DATE_EPOCH wins), filled by bakegen.",
            "revision": "org.opencontainers.image.revision: the commit, filled by bakegen.",
            "source": "org.opencontainers.image.source and url, filled by bakegen.",
        }
        for fact, description in descriptions.items():
            name = versioning.fact_variable(fact)
            if name in self.variables:
                if fact != "version":
                    self.error(
                        ("variables", name), f"bake variable {name} is filled by versioning; give this variable another name", key=True
                    )
                continue  # a declared VERSION keeps its default: the computed value replaces it at run time
            self._declare(name, "", ("versioning",), description)
        for name, what in zip(versioning.alias_variables(), ("MAJOR.MINOR", "MAJOR"), strict=False):
            if name in self.variables:
                self.error(("variables", name), f"bake variable {name} is filled by versioning; give this variable another name", key=True)
                continue
            self._declare(
                name, "", ("versioning",), f"The {what} alias of a semver release tag at HEAD, filled by bakegen; empty otherwise."
            )
        return versioning

    def _version_args(self, versioning: Versioning | None, top_args: Mapping[str, Template]) -> dict[str, Template]:
        if versioning is None:
            return {}
        for name in sorted(top_args.keys() & dict(versioning.args).keys()):
            self.error(("args", name), f"ARG {name} also gets a git fact from versioning.args; set it in one place", key=True)
        return {arg: (Var(versioning.fact_variable(fact)),) for arg, fact in versioning.args}

    def _metadata_templates(
        self, entries: Mapping[str, str], builtins: Mapping[str, str], variant: str, kind: str
    ) -> tuple[dict[str, str], dict[str, Template]]:
        """Labels or annotations: (the literal ones, the ones whose value uses a bake variable). Values take the
        placeholders tags take ({stage}, {variant}, bake variables; {{ and }} for braces)."""
        literal: dict[str, str] = {}
        templated: dict[str, Template] = {}
        own = self.data["variants"][variant].get(kind, {})
        for key, text in entries.items():
            path: SpecPath = ("variants", variant, kind, key) if key in own else (kind, key)
            template = self._template(text, path, builtins)
            if template is None:
                continue
            if any(isinstance(part, Var) for part in template):
                templated[key] = template
            else:
                literal[key] = "".join(part.value for part in template if isinstance(part, Text))
        return literal, templated

    def _oci_metadata(
        self, versioning: Versioning | None, labels: Iterable[str], annotations: Iterable[str]
    ) -> tuple[dict[str, Template], dict[str, Template]]:
        """The org.opencontainers.image.* labels and annotations of `versioning`; the spec's own keys win."""
        if versioning is None or not versioning.metadata:
            return {}, {}
        facts = {"created": "created", "revision": "revision", "version": "version", "source": "source", "url": "source"}
        metadata: dict[str, Template] = {OCI_PREFIX + key: (Var(versioning.fact_variable(fact)),) for key, fact in facts.items()}
        taken = {key.rpartition(":")[2] for key in annotations}
        return (
            {key: value for key, value in metadata.items() if key not in set(labels)},
            {key: value for key, value in metadata.items() if key not in taken},
        )

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
        return joined(parts)

    def _tags(self, builtins: Mapping[str, str], suffixes: list[str], repo_var: str) -> Iterator[Template]:
        seen: set[Template] = set()
        for index, text in enumerate(self.data.get("tags", ["{stage}{suffix}"])):
            for suffix in suffixes if "{suffix}" in text else suffixes[:1]:
                template = self._template(text, ("tags", index), {**builtins, "suffix": suffix})
                if template is None:
                    break
                tag = joined((Var(repo_var), Text(":"), *template))
                if tag not in seen:
                    seen.add(tag)
                    yield tag

    def _cache(self, builtins: Mapping[str, str], repo_var: str) -> Cache | None:
        cache = self.data.get("cache", {"type": "none"})
        mode = cache.get("mode", "max")
        if cache["type"] == "gha":
            return Cache("gha", scope=f"{builtins['variant']}-{builtins['stage']}", mode=mode)
        if cache["type"] != "registry":
            return None
        text = cache.get("ref", "{repository}:buildcache-{variant}")
        ref = self._template(text, ("cache", "ref"), {**builtins, "suffix": "", "repository": "\0"})
        if ref is None:
            return None
        # {repository} is the repository variable, resolved at bake time like the tags.
        parts: list[Part] = []
        for part in ref:
            if isinstance(part, Var):
                parts.append(part)
                continue
            for index, piece in enumerate(part.value.split("\0")):
                if index:
                    parts.append(Var(repo_var))
                parts.append(Text(piece))
        return Cache("registry", ref=joined(parts), mode=mode)

    # -- smoke checks --

    def _checks(self, stage: str, variant: str) -> tuple[SmokeCheck, ...]:
        found: list[SmokeCheck] = []
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

    def _check(self, item: dict[str, Any], path: SpecPath, stage: str, variant: str) -> SmokeCheck:
        kind = next(k for k in CHECK_KINDS if k in item)
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
            return SmokeCheck(**common, exit_code=run.get("exit-code", 0), stdout=run.get("stdout"), stderr=run.get("stderr"))
        if kind == "http":
            http = item["http"]
            return SmokeCheck(
                **common, port=http["port"], http_path=http.get("path", "/health"), status=http.get("status", 200), body=http.get("body")
            )
        if kind == "file":
            return SmokeCheck(**common, file=item["file"])
        builtins = {"stage": stage, "variant": variant}
        expected = []
        for key, text in sorted(item[kind].items()):
            template = self._template(text, (*path, kind, key), builtins)
            if template is not None:
                expected.append((key, template))
        return SmokeCheck(**common, expected=tuple(expected))

    def _check_unknown_check_stages(self, stages: list[str]) -> None:
        places: list[tuple[SpecPath, dict[str, Any]]] = [(("checks",), self.data.get("checks", {}))]
        places += [(("variants", v, "checks"), d.get("checks", {})) for v, d in self.data["variants"].items()]
        for path, checks in places:
            for stage in checks:
                if stage not in stages:
                    self.error((*path, stage), f"checks for unknown stage {stage!r} (stages: {', '.join(stages)})", key=True)

    # -- size budgets --

    def _size_budget(self, stage: str, variant: str) -> int | None:
        """A variant's budget for the stage, else the variant's one size, else the top-level one for the stage."""
        own = self.data["variants"][variant].get("size-budget")
        if isinstance(own, dict) and stage in own:
            return parse_size(own[stage])
        if own is not None and not isinstance(own, dict):
            return parse_size(own)
        top = self.data.get("size-budget", {})
        return parse_size(top[stage]) if stage in top else None

    def _check_unknown_budget_stages(self, stages: list[str]) -> None:
        places: list[tuple[SpecPath, Any]] = [(("size-budget",), self.data.get("size-budget", {}))]
        places += [(("variants", v, "size-budget"), d.get("size-budget")) for v, d in self.data["variants"].items()]
        for path, budgets in places:
            for stage in budgets if isinstance(budgets, dict) else {}:
                if stage not in stages:
                    self.error((*path, stage), f"size budget for unknown stage {stage!r} (stages: {', '.join(stages)})", key=True)

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

    def _check_duplicate_tags(self, targets: list[Target]) -> None:
        owner: dict[Template, str] = {}
        for target in targets:
            for tag in target.tags:
                if tag in owner and owner[tag] != target.tag_owner:
                    self.error(
                        ("variants", target.variant),
                        f"tag {shown(tag)} is given to both {owner[tag]} and {target.name}; make the tag templates or variant suffixes distinct",
                        key=True,
                    )
                owner.setdefault(tag, target.tag_owner)

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
        pull_request = raw.get("pull-request", defaults.pull_request)
        return WorkflowSettings(
            name=raw.get("name", defaults.name),
            runners=tuple(sorted(runners.items())),
            schedule=raw.get("schedule", defaults.schedule),
            tag_patterns=tuple(raw.get("tags", defaults.tag_patterns)),
            version_variable=raw.get("version-variable", defaults.version_variable),
            smoke=raw.get("smoke", defaults.smoke),
            install=raw.get("install"),
            pull_request=pull_request is not False,
            pull_request_paths=tuple(pull_request.get("paths", ())) if isinstance(pull_request, dict) else (),
            repository=raw.get("repository"),
            python=tuple(sorted(raw.get("python", {}).items())),
            attest=raw.get("attest", defaults.attest),
        )


def _filled_by(name: str) -> str:
    facts = {"OCI_CREATED": "the commit time", "OCI_REVISION": "the commit", "OCI_SOURCE": "the source URL"}
    return facts.get(name, "the image repository")


_SIZE_UNITS = {"B": 1, "kB": 1000, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def parse_size(value: int | str) -> int:
    """Bytes of a schema-valid size: 52428800, "50MiB", "1.5 GB"."""
    if isinstance(value, int):
        return value
    number = value.rstrip("BkKMGi ")
    return round(float(number) * _SIZE_UNITS[value[len(number) :].strip()])


def _suggest_variable(path: SpecPath, name: str) -> str:
    if len(path) >= 2 and path[0] == "variants":
        prefix = "".join(c if c.isalnum() else "_" for c in str(path[1])).upper()
        return f"{prefix}_{name}"
    return f"OTHER_{name}"
