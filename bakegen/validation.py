"""Semantic checks a schema cannot make, so a bad or hostile spec fails at `validate` with
FILE:LINE:COL instead of later in buildx or a smoke test, and can never run code on the host.

`semantic_problems(spec, plan)` checks Docker's reference grammar (tags with the variables'
defaults, the repository, cache refs), names that bake or HCL treat specially, bake variable
names that docker reads from its environment (bakegen passes every bake variable to docker's
environment), templates and defaults that would not expand as written, smoke-check fields, and
settings that name variables that do not exist.
"""

from __future__ import annotations

import fnmatch
import math
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bakegen.errors import Diagnostic, Severity
from bakegen.model import BuildPlan
from bakegen.platforms import platform_problem
from bakegen.spec import Spec, SpecPath

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_TAG_CHAR = re.compile(r"[A-Za-z0-9_.-]")
_TAG_RULE = "a Docker tag has up to 128 letters, digits, '_', '.' and '-', and does not start with '.' or '-'"
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = re.compile(rf"{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]+)?")
_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
_BUILTINS = ("stage", "variant", "suffix", "repository")

# Read from the environment by docker, buildx, BuildKit's client, credential helpers, the Go
# runtime, the dynamic loader, shells or GitHub Actions. Compared in upper case: Windows'
# environment ignores case, and proxies are read as http_proxy too.
_DOCKER_ENVIRONMENT = """
    DOCKER_* BUILDX_* BUILDKIT_* EXPERIMENTAL_BUILDKIT_* COMPOSE_* XDG_* GIT_* LD_* GITHUB_* RUNNER_* ACTIONS_* PYTHON* OTEL_* SSL_* BASH_FUNC_*
    PATH HOME USER LOGNAME SHELL TMPDIR TMP TEMP HTTP_PROXY HTTPS_PROXY NO_PROXY ALL_PROXY FTP_PROXY KUBECONFIG SSH_AUTH_SOCK GCONV_PATH
    REQUESTS_CA_BUNDLE CURL_CA_BUNDLE BASH_ENV ENV IFS CDPATH PS4 SHELLOPTS GODEBUG GOGC GOMAXPROCS GOMEMLIMIT GOTRACEBACK
"""


def docker_reads(name: str) -> bool:
    """Whether docker, buildx or the process around them read an environment variable of this name."""
    return any(fnmatch.fnmatchcase(name.upper(), pattern) for pattern in _DOCKER_ENVIRONMENT.split())


def repository_problem(repository: str) -> str | None:
    """Why `repository` is not a repository in Docker's reference grammar, or None."""
    if len(repository) > 255:
        return f"it is {len(repository)} characters; Docker allows 255"
    first, slash, rest = repository.partition("/")
    is_host = bool(slash) and ("." in first or ":" in first or first == "localhost")
    if is_host and not _HOST.fullmatch(first):
        return f"{first!r} is not a registry host[:port]"
    for component in (rest if is_host else repository).split("/"):
        if ":" in component:
            return "':' may only follow a registry host, and a registry needs an image path after it (host:5000/app)"
        if component.lower() != component:
            return f"{component!r} has uppercase letters; repositories are lowercase"
        if not _PATH_COMPONENT.fullmatch(component):
            return f"{component!r} is not a path component (lowercase letters and digits, separated by '.', '_', '__' or dashes)"
    return None


def reference_problem(reference: str) -> str | None:
    """Why `reference` (REPOSITORY[:TAG]) is not a Docker image reference, or None."""
    name, colon, tag = reference.rpartition(":")
    if "/" in tag:  # the colon was a registry port's
        name, colon = reference, ""
    problem = repository_problem(name if colon else reference)
    if problem is None and colon and not _TAG.fullmatch(tag):
        problem = f"tag {tag!r} is not valid: {_TAG_RULE}"
    return problem


@dataclass(frozen=True)
class _Naming:
    """One place a spec names a bake variable."""

    name: str
    path: SpecPath
    key: bool  # the name is the mapping key at `path`, not its value
    arg: str | None  # the build ARG that takes this variable
    default_path: SpecPath | None


@dataclass(frozen=True)
class _Piece:
    """Part of an expanded template, and where in the spec it comes from."""

    text: str
    origin: SpecPath
    variable: str | None = None  # the bake variable whose default this is


def semantic_problems(spec: Spec, plan: BuildPlan) -> list[Diagnostic]:
    """Errors (and warnings) the schema and the planner cannot see, sorted by position."""
    return _Checker(spec, plan).run()


def _name_problem(naming: _Naming) -> str | None:
    name = naming.name
    if docker_reads(name):
        message = f"bake variable {name} would be passed to docker's environment and change how docker runs; rename it"
        if naming.arg == name:
            message += f"; a build ARG keeps its name with `args: {{{name}: {{value: ..., variable: MY_{name.upper()}}}}}`"
        return message
    if name in ("true", "false", "null"):
        return f"bake variable {name!r} is an HCL keyword: ${{{name}}} means the literal {name}; rename it"
    if name in ("target", "group"):
        return f"bake variable {name!r} cannot be read in HCL, where `{name}` names bake's blocks; rename it"
    if name.startswith("BAKE_"):
        return f"bake variable {name}: names starting with BAKE_ are bake's built-ins, which override it; rename it"
    return None


class _Checker:
    def __init__(self, spec: Spec, plan: BuildPlan) -> None:
        self.spec, self.plan, self.data = spec, plan, spec.data
        self.defaults = {v.name: v.default for v in plan.variables}
        self.namings = list(_namings(self.data))
        self.origin = {n.name: n.default_path for n in reversed(self.namings) if n.default_path}
        self.found: dict[tuple[SpecPath, bool], Diagnostic] = {}

    def add(self, path: SpecPath, message: str, severity: Severity = "error", *, key: bool = False) -> None:
        # One problem per place: the first is the one to fix; the next shows after it.
        self.found.setdefault((path, key), self.spec.diagnostic(path, message, severity, key=key))

    def run(self) -> list[Diagnostic]:
        for naming in self.namings:
            problem = _name_problem(naming)
            if problem:
                self.add(naming.path, problem, key=naming.key)
        shadowing = "would replace bake's `default` group (every target); rename it"
        for index in (i for i, stage in enumerate(self.data["stages"]) if stage == "default"):
            self.add(("stages", index), f"a stage named 'default' {shadowing}")
        if "default" in self.data["variants"]:
            self.add(("variants", "default"), f"a variant named 'default' {shadowing}", key=True)
        problem = repository_problem(self.data["image"]["repository"])
        if problem:
            self.add(("image", "repository"), f"not a Docker repository: {problem}")
        self.check_literals()
        self.check_tags()
        self.check_untagged_targets()
        self.check_cache()
        for path, item in _smoke_checks(self.data):
            self.check_smoke(path, item)
        self.check_workflow()
        return sorted(self.found.values(), key=lambda d: (d.line, d.column))

    def check_literals(self) -> None:
        # Defaults are literal text: {NAME} in them is never expanded. (Labels and annotations take placeholders.)
        known = {*self.defaults, *_BUILTINS}
        for naming in self.namings:
            value = _at(self.data, naming.default_path) if naming.default_path else None
            named = [m for m in _PLACEHOLDER.findall(value) if m in known] if isinstance(value, str) else []
            if naming.default_path and named:
                self.add(naming.default_path, f"defaults are literal: {{{named[0]}}} is not expanded here; give {naming.name} a value")

    def template_fields(self, text: str, path: SpecPath) -> list[str] | None:
        """The placeholders of a template; None when it does not parse (the planner says why)."""
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError:
            return None
        for literal, field, _, _ in parsed:
            if field is not None and literal.endswith("$"):
                hint = f"placeholders are written {{{field}}}, without '$' (in HCL, $${{{field}}} is literal text)"
                self.add(path, f"'$' before {{{field}}}: {hint}")
        return [field for _, field, _, _ in parsed if field is not None]

    def expand(self, text: str, path: SpecPath, builtins: Mapping[str, _Piece]) -> list[_Piece] | None:
        """A template with builtins filled in and each variable by its default, or by 'x' where that
        is empty (a tag that uses an empty variable is left out, so it only exists with a value)."""
        pieces: list[_Piece] = []
        for literal, field, _, _ in string.Formatter().parse(text):
            pieces.append(_Piece(literal, path))
            if field is None:
                continue
            if field in builtins:
                pieces.append(builtins[field])
            elif field in self.defaults:
                default = self.defaults[field]
                pieces.append(_Piece(default, self.origin.get(field, path), field) if default else _Piece("x", path))
            else:
                return None
        return [p for p in pieces if p.text]

    def check_tags(self) -> None:
        for index, text in enumerate(self.data.get("tags", ["{stage}{suffix}"])):
            path: SpecPath = ("tags", index)
            fields = self.template_fields(text, path)
            if fields is None:
                continue
            if self.plan.repository_variable in fields:
                self.add(path, f"{{{self.plan.repository_variable}}} is the repository; a tag template is the part after the colon")
                continue
            for variant, suffix, suffix_path, stage in _tag_inputs(self.data, every_suffix="suffix" in fields):
                builtins = {"stage": _Piece(stage, path), "variant": _Piece(variant, path), "suffix": _Piece(suffix, suffix_path)}
                pieces = self.expand(text, path, builtins)
                if pieces is None:
                    break
                self.check_tag(pieces, path, f"{stage}-{variant}")

    def check_tag(self, pieces: list[_Piece], path: SpecPath, target: str) -> None:
        tag = "".join(p.text for p in pieces)
        for piece in pieces:
            bad = next((ch for ch in piece.text if not _TAG_CHAR.fullmatch(ch)), None)
            if bad is not None:
                source = f"the default {piece.text!r} of {piece.variable}" if piece.variable else repr(piece.text)
                what = source if piece.origin != path or piece.variable else "this template"
                self.add(piece.origin, f"{what} makes tag {tag!r} ({target}) invalid: {bad!r} is not allowed; {_TAG_RULE}")
                return
        if not tag:
            self.add(path, f"the tag comes out empty for {target}, so its image reference would end in ':'")
        elif tag[0] in ".-":
            self.add(path, f"tag {tag!r} ({target}) starts with {tag[0]!r}; {_TAG_RULE}")
        elif len(tag) > 128:
            self.add(path, f"tag {tag[:40]!r}... ({target}) is {len(tag)} characters with the variables' defaults; {_TAG_RULE}")

    def check_untagged_targets(self) -> None:
        def unnamed(tag: Any) -> list[str]:
            return [n for n in self.plan.tag_conditions(tag) if not self.defaults[n]]

        untagged = [t for t in self.plan.targets if all(unnamed(tag) for tag in t.tags)]
        if untagged:
            names = ", ".join(t.name for t in untagged[:3]) + (f" and {len(untagged) - 3} more" if len(untagged) > 3 else "")
            empty = ", ".join(dict.fromkeys(n for t in untagged for tag in t.tags for n in unnamed(tag)))
            message = f"every tag of {names} uses a variable that is empty by default ({empty}), so by default the image has no name"
            self.add(("tags",), f"{message}; add a tag without such variables, e.g. '{{stage}}{{suffix}}'")

    def check_cache(self) -> None:
        cache = self.data.get("cache", {"type": "none"})
        path: SpecPath = ("cache", "ref")
        text = cache.get("ref", "{repository}:buildcache-{variant}")
        fields = self.template_fields(text, path) if cache["type"] == "registry" else None
        if fields is None:
            return
        if "suffix" in fields:
            self.add(path, "{suffix} is always empty in a cache ref (one cache per variant); use {variant}")
        elif "variant" not in fields and len(self.data["variants"]) > 1:
            variants = ", ".join(self.data["variants"])
            self.add(path, f"without {{variant}}, the variants ({variants}) would overwrite each other's cache on one ref")
        repository = _Piece(self.defaults[self.plan.repository_variable], path)
        for target in self.plan.targets:
            builtins = {"stage": _Piece(target.stage, path), "variant": _Piece(target.variant, path), "repository": repository}
            pieces = self.expand(text, path, {**builtins, "suffix": _Piece("", path)})
            problem = reference_problem("".join(p.text for p in pieces)) if pieces is not None else None
            if problem:
                self.add(path, f"the cache ref of {target.name} is not an image reference: {problem}")

    def check_smoke(self, path: SpecPath, item: dict[str, Any]) -> None:
        timeout = item.get("timeout", 60)
        if not math.isfinite(timeout) or timeout <= 0:
            self.add((*path, "timeout"), f"a timeout is a finite number of seconds above 0, not {timeout!r}")
        for kind, field, low, high in [("run", "exit-code", 0, 255), ("http", "port", 1, 65535), ("http", "status", 100, 599)]:
            value = item.get(kind, {}).get(field)
            if isinstance(value, float) or (isinstance(value, int) and not low <= value <= high):
                self.add((*path, kind, field), f"{field} is a whole number from {low} to {high}, not {value!r}")
        for kind, field in [("run", "stdout"), ("run", "stderr"), ("http", "body")]:
            try:
                re.compile(item.get(kind, {}).get(field) or "")
            except re.error as exc:
                self.add((*path, kind, field), f"not a valid regular expression: {exc}")
        http_path = item.get("http", {}).get("path", "/")
        if not http_path.startswith("/"):
            self.add((*path, "http", "path"), f"an HTTP path starts with '/': '/{http_path}'")
        elif any(ch.isspace() or not ch.isprintable() for ch in http_path):
            self.add((*path, "http", "path"), "spaces and control characters must be percent-encoded in an HTTP path")
        for kind in ("env", "label"):
            for key, text in item.get(kind, {}).items():
                self.template_fields(text, (*path, kind, key))

    def check_workflow(self) -> None:
        workflow = self.data.get("workflow", {})
        name = workflow.get("version-variable")
        path: SpecPath = ("workflow", "version-variable")
        if name is not None and name not in self.defaults:
            known = ", ".join(self.defaults)
            self.add(path, f"{name} is not a bake variable of this spec (known: {known}); tag pushes would publish no release tags")
        elif name is not None and name == self.plan.repository_variable:
            self.add(path, f"{name} is the repository variable; a git tag would replace the repository")
        elif name is not None and not any(name in self.plan.tag_conditions(tag) for t in self.plan.targets for tag in t.tags):
            self.add(path, f"no tag uses {{{name}}}, so a git tag push publishes the same tags as any other run", "warning")
        built = {p for t in self.plan.targets for p in t.platforms}
        for platform in workflow.get("runners", {}):
            if platform not in built:
                reason = platform_problem(platform) or f"no variant builds {platform} (built: {', '.join(sorted(built))})"
                self.add(("workflow", "runners", platform), f"this runner is never used: {reason}", "warning", key=True)


def _at(data: Any, path: SpecPath) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _namings(data: dict[str, Any]) -> Iterator[_Naming]:
    """Every place a bake variable is named, in the planner's order (the first default wins)."""
    yield _Naming(data["image"].get("variable", "REPO"), ("image", "variable"), False, None, ("image", "repository"))
    for name in data.get("variables", {}):
        yield _Naming(name, ("variables", name), True, None, ("variables", name, "default"))
    for base in [("args",), *(("variants", v, "args") for v in data["variants"])]:
        for arg, value in (_at(data, base) or {}).items():
            path = (*base, arg)
            if isinstance(value, str):
                yield _Naming(arg, path, True, arg, path)
            elif value.get("variable", arg) is not None:
                renamed = "variable" in value
                default = (*path, "value") if "value" in value else None
                yield _Naming(value.get("variable", arg), (*path, "variable") if renamed else path, not renamed, arg, default)


def _tag_inputs(data: dict[str, Any], *, every_suffix: bool) -> Iterator[tuple[str, str, SpecPath, str]]:
    """(variant, suffix, where the suffix is written, stage) for every tag the planner makes:
    once per suffix and alias where the template uses {suffix}, else once."""
    for variant, vdata in data["variants"].items():
        vpath: SpecPath = ("variants", variant)
        suffixes: list[tuple[str, SpecPath]] = [(vdata.get("suffix", f"-{variant}"), (*vpath, "suffix"))]
        if every_suffix:
            suffixes += [(alias, (*vpath, "aliases", i)) for i, alias in enumerate(vdata.get("aliases", []))]
        for stage in (s for s in data["stages"] if s in vdata.get("stages", data["stages"])):
            for suffix, suffix_path in suffixes:
                yield variant, suffix, suffix_path, stage


def _smoke_checks(data: dict[str, Any]) -> Iterator[tuple[SpecPath, dict[str, Any]]]:
    places: list[tuple[SpecPath, dict[str, Any]]] = [(("checks",), data.get("checks", {}))]
    places += [(("variants", v, "checks"), d.get("checks", {})) for v, d in data["variants"].items()]
    for base, by_stage in places:
        for stage, items in by_stage.items():
            for index, item in enumerate(items):
                yield (*base, stage, index), item
