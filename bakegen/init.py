"""`bakegen init`: a starting bakegen.yaml from what a project already has.

Two sources:
- the Dockerfiles under a directory: every named stage, every ARG with its default, one
  variant per Dockerfile (cpu.Dockerfile -> cpu, Dockerfile.cuda -> cuda, Dockerfile -> main);
- an existing bake file (`--from-bake`), read through the real `docker buildx bake --print`,
  so buildx itself resolves variables, functions, inheritance and matrices. Targets map to
  variants x stages where their names and tags allow; what bakegen does not model is named
  on stderr (and in the file's header), never dropped silently.

The spec is checked the way `bakegen validate --strict` checks it before anything is written,
and nothing is overwritten without `force`. It asks nothing interactively: every choice it
makes is written down in the file, which is meant to be edited.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from bakegen import resources
from bakegen.dockerfile import DockerfileInfo, parse_dockerfile
from bakegen.dockerfile_check import dockerfile_problems
from bakegen.errors import EXIT_FAILED, EXIT_OK, BakegenError, Diagnostic
from bakegen.output import write_atomic
from bakegen.planner import build_plan
from bakegen.platforms import platform_problem
from bakegen.spec import DEFAULT_SPEC, Spec, SpecPath, format_path

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


@dataclass(frozen=True)
class InitOptions:
    """What `bakegen init` reads and where it writes."""

    directory: Path = Path(".")  # searched for Dockerfiles (without from_bake)
    output: str = DEFAULT_SPEC  # a path, or "-" for stdout
    from_bake: Path | None = None  # an existing bake file (HCL, JSON or compose), read through buildx
    bake_targets: tuple[str, ...] = ()  # targets or groups of the bake file (default: its default group)
    repository: str | None = None  # image.repository; default: from the bake file's tags, else the directory name
    force: bool = False  # overwrite an existing output file
    max_dockerfiles: int = MAX_DOCKERFILES


def run_init(options: InitOptions) -> int:
    """Write a starting spec. Returns an exit code; raises BakegenError on bad input (exit 2)."""
    if options.bake_targets and options.from_bake is None:
        raise BakegenError("--target names targets of a bake file; it needs --from-bake FILE")
    if options.repository is not None and not _REPOSITORY.fullmatch(options.repository):
        raise BakegenError(f"--repository {options.repository!r}: not an image repository (lowercase, e.g. registry.example:5000/team/app)")
    if options.output == "-":
        spec_path = Path.cwd() / DEFAULT_SPEC
    else:
        spec_path = Path(options.output)
        if spec_path.is_dir():
            raise BakegenError(f"{spec_path}: is a directory; give the spec's file name, e.g. -o {spec_path / DEFAULT_SPEC}")
        # Checked before any work (and before running buildx): never overwrite by surprise.
        if spec_path.exists() and not options.force:
            raise BakegenError(f"{spec_path} already exists; use --force to overwrite it")
    spec_dir = spec_path.absolute().parent

    if options.from_bake is not None:
        draft, notes = draft_from_bake(options.from_bake, options.bake_targets, spec_dir, options.repository)
    else:
        draft, notes = draft_from_dockerfiles(options.directory, spec_dir, options.repository, options.max_dockerfiles)
    data = spec_data(draft)
    text = spec_yaml(draft, data)
    problems = check_generated(text, data, spec_path)
    for note in notes:
        print(note, file=sys.stderr)
    if problems:
        print(
            "bakegen init: the spec it built does not pass `bakegen validate --strict` (a bug in bakegen init; please report it):",
            file=sys.stderr,
        )
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_FAILED
    if options.output == "-":
        sys.stdout.write(text)
        return EXIT_OK
    write_atomic(spec_path, text)
    shown = options.output
    print(
        f"wrote {shown}: {len(draft.variants)} variant(s), {len(draft.stages)} stage(s). It is a starting point; edit it, then",
        file=sys.stderr,
    )
    print(f"  bakegen validate -f {shown} && bakegen render -f {shown}", file=sys.stderr)
    return EXIT_OK


# --- the draft: what init found, before it is written as YAML --------------------------


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


# --- from Dockerfiles --------------------------------------------------------------------


@dataclass(frozen=True)
class StageLine:
    name: str | None  # lowercased, as Docker resolves stage names; None for an unnamed FROM
    line: int


@dataclass(frozen=True)
class ScannedDockerfile:
    """What init reads from a Dockerfile: every FROM, and every ARG with its first default."""

    stages: tuple[StageLine, ...]
    args: tuple[tuple[str, str | None], ...]
    differing_defaults: tuple[str, ...] = ()


def is_dockerfile_name(name: str) -> bool:
    lower = name.lower()
    if lower.endswith(NOT_DOCKERFILE_SUFFIXES):
        return False
    return lower == "dockerfile" or lower.endswith(".dockerfile") or lower.startswith("dockerfile.")


def find_dockerfiles(directory: Path, limit: int = MAX_DOCKERFILES) -> tuple[list[Path], int]:
    """Dockerfiles under `directory`, shallowest first, at most `limit`; and how many were found in all."""
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRECTORIES and not os.path.islink(os.path.join(root, d)))
        found += [Path(root, f) for f in files if is_dockerfile_name(f) and os.path.isfile(os.path.join(root, f))]
    found.sort(key=lambda p: (len(p.relative_to(directory).parts), p.as_posix()))
    return found[:limit], len(found)


def scan_dockerfile(text: str) -> ScannedDockerfile:
    stages: list[StageLine] = []
    args: dict[str, str | None] = {}
    differing: list[str] = []
    for line, instruction in _instructions(text):
        keyword, _, rest = instruction.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            named = len(words) >= 3 and words[1].upper() == "AS"
            stages.append(StageLine(words[2].lower() if named else None, line))
        elif keyword == "ARG":
            try:
                words = shlex.split(rest)
            except ValueError:
                words = rest.split()
            for word in words:
                name, sep, default = word.partition("=")
                value = default if sep else None
                if name not in args:
                    args[name] = value
                elif value is not None and args[name] is not None and args[name] != value and name not in differing:
                    differing.append(name)
    return ScannedDockerfile(tuple(stages), tuple(args.items()), tuple(differing))


def _instructions(text: str) -> Iterator[tuple[int, str]]:
    """Logical lines with their first line number: comments dropped, continuations joined, heredoc bodies skipped."""
    lines = text.splitlines()
    escape = "\\"
    for raw in lines:  # parser directives: only at the very top
        directive = _DIRECTIVE.match(raw.strip())
        if not directive:
            break
        if directive.group(1).lower() == "escape":
            escape = directive.group(2)[0]
    current, start = "", 0
    heredocs: list[tuple[str, bool]] = []
    for number, raw in enumerate(lines, 1):
        if heredocs:
            delimiter, strip_tabs = heredocs[0]
            if (raw.lstrip("\t") if strip_tabs else raw) == delimiter:
                heredocs.pop(0)
            continue
        stripped = raw.strip()
        if stripped.startswith("#") or (not current and not stripped):
            continue
        if not current:
            start = number
        if stripped.endswith(escape):
            current += stripped[: -len(escape)] + " "
            continue
        current = (current + stripped).strip()
        if current:
            yield start, current
            if current.split(" ", 1)[0].upper() in ("RUN", "COPY", "ADD"):
                heredocs = [(m.group(3), m.group(1) == "-") for m in _HEREDOC.finditer(current)]
        current = ""
    if current.strip():
        yield start, current.strip()


def draft_from_dockerfiles(
    directory: Path, spec_dir: Path, repository: str | None = None, limit: int = MAX_DOCKERFILES
) -> tuple[SpecDraft, list[Diagnostic]]:
    if not directory.is_dir():
        raise BakegenError(f"{directory}: not a directory")
    paths, total = find_dockerfiles(directory, limit)
    if not paths:
        raise BakegenError(
            f"{directory}: no Dockerfile found (looked for Dockerfile, *.Dockerfile and Dockerfile.*, "
            f"not under {', '.join(sorted(SKIPPED_DIRECTORIES)[:4])}, ...); write one first, or start from a bake file with --from-bake"
        )
    notes: list[Diagnostic] = []
    if total > limit:
        notes.append(
            Diagnostic(str(directory), 0, 0, "", f"found {total} Dockerfiles; read the first {limit} (shallowest first)", "warning")
        )

    def note(path: Path, message: str, line: int = 0) -> None:
        notes.append(Diagnostic(str(path), line, 1 if line else 0, "", message, "warning"))

    usable: list[tuple[Path, list[str], list[tuple[str, str, str]]]] = []
    for path in paths:
        try:
            scanned = scan_dockerfile(path.read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            note(path, f"cannot read ({exc.strerror}); left out")
            continue
        stages: list[str] = []
        for stage in scanned.stages:
            if stage.name is None or stage.name in stages:
                continue
            if _NAME.fullmatch(stage.name):
                stages.append(stage.name)
            else:
                note(path, f"stage {stage.name!r}: bakegen stage names use letters, digits, - and _; left out", stage.line)
        last = scanned.stages[-1] if scanned.stages else None
        if not stages:
            where = f" (line {last.line})" if last else ""
            note(
                path,
                f"has no named stage; bakegen builds named stages (bake `target`), so it is left out: name its last stage{where}, e.g. `FROM ... AS app`, and run init again",
                last.line if last else 0,
            )
            continue
        if last is not None and last.name is None:
            note(
                path,
                f"its last stage (line {last.line}) has no name, so bakegen cannot build it; name it (`FROM ... AS app`) and add it to stages",
                last.line,
            )
        args: list[tuple[str, str, str]] = []  # (name, value, comment)
        for name, default in scanned.args:
            if _predefined(name):
                continue
            if not _IDENTIFIER.fullmatch(name):
                note(path, f"ARG {name!r} is not a name bakegen accepts (letters, digits, _); left out")
            elif default is not None and "$" in default:
                # A build arg is passed literally; the Dockerfile's own default expands ${OTHER}.
                note(
                    path,
                    f"ARG {name}: its default {default!r} refers to other ARGs, which a build-arg would not expand; left to the Dockerfile",
                )
            else:
                comment = "" if default is not None else "no default in the Dockerfile"
                if name in scanned.differing_defaults:
                    comment = "declared with several defaults; this is the first"
                args.append((name, default or "", comment))
        usable.append((path, stages, args))
    if not usable:
        raise BakegenError([replace(n, severity="error") for n in notes] or f"{directory}: no usable Dockerfile")

    all_stages = tuple(dict.fromkeys(stage for _, stages, _ in usable for stage in stages))
    names = _Names(all_stages)
    variants: list[VariantDraft] = []
    context = _relative(directory, spec_dir)
    for path, stages, args in usable:
        relative = path.relative_to(directory)
        name = names.take(_variant_base_name(relative), stages, [p for p in reversed(relative.parent.parts)])
        comments = [("args." + arg, comment) for arg, _, comment in args if comment]
        variants.append(
            VariantDraft(
                name=name,
                dockerfile=relative.as_posix(),
                stages=tuple(s for s in all_stages if s in stages),
                platforms=("linux/amd64",),
                args=tuple((arg, value) for arg, value, _ in args),
                comments=tuple(comments),
            )
        )
    # The plain Dockerfile's images (or the only variant's) get the plain tags: app:server, not app:server-main.
    variants = [replace(v, suffixes=("",)) if v.name == DEFAULT_VARIANT or len(variants) == 1 else v for v in variants]
    header = [
        f"Generated by `bakegen init` from {len(variants)} Dockerfile(s) under {_shown(directory)}.",
        "A starting point, meant to be edited: check image.repository, keep the stages you publish,",
        "add platforms, then run `bakegen validate --strict` and `bakegen render`.",
    ]
    if any(len(PurePosixPath(v.dockerfile).parts) > 1 for v in variants):
        header.append(
            f"Every variant builds with the context {context!r}; a Dockerfile that expects its own directory needs a spec of its own."
        )
    return (
        SpecDraft(
            repository=repository or guess_repository(directory),
            repository_guessed=repository is None,
            context=context,
            stages=all_stages,
            tags=("{stage}{suffix}",),
            variants=tuple(variants),
            header=tuple(header),
            stages_comment="every named stage found; keep the ones you publish",
            platforms_comment="e.g. [linux/amd64, linux/arm64]",
        ),
        notes,
    )


def _variant_base_name(relative: Path) -> str:
    name, lower = relative.name, relative.name.lower()
    if lower == "dockerfile":
        base = relative.parent.name if relative.parent.parts else DEFAULT_VARIANT
    elif lower.endswith(".dockerfile"):
        base = name[: -len(".dockerfile")]
    else:
        base = name[len("dockerfile.") :]
    return sanitize_name(base) or DEFAULT_VARIANT


# --- from a bake file ----------------------------------------------------------------------


@dataclass(frozen=True)
class BakeTarget:
    """One target of `docker buildx bake --print`, reduced to what bakegen models."""

    name: str
    stage: str
    context: str
    dockerfile: str
    platforms: tuple[str, ...]
    args: tuple[tuple[str, str], ...]
    tags: tuple[str, ...]  # the part after the colon, in the chosen repository
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[str, ...]


@dataclass
class _Report:
    """What could not be carried over: (kind, subject) -> the targets it concerns, in order found."""

    file: str
    entries: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(self, kind: str, subject: str, target: str) -> None:
        targets = self.entries.setdefault((kind, subject), [])
        if target not in targets:
            targets.append(target)

    def left_out(self) -> list[str]:
        return list(dict.fromkeys(t for (kind, _), targets in self.entries.items() if kind.startswith("skipped") for t in targets))

    def not_carried(self) -> list[str]:
        """Attribute names for the file's header."""
        names = [subject.split(" ", 1)[0] for (kind, subject) in self.entries if kind in _NOT_CARRIED_KINDS]
        return sorted(set(names))

    def diagnostics(self) -> list[Diagnostic]:
        return [
            Diagnostic(
                self.file,
                0,
                0,
                subject,
                f"{_BAKE_MESSAGES[kind]} (target{'s' if len(targets) > 1 else ''} {', '.join(targets)})",
                "warning",
            )
            for (kind, subject), targets in self.entries.items()
        ]


def bake_print(bake_file: Path, names: Sequence[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """`docker buildx bake --file FILE --print [NAME ...]` run in the file's directory.

    Returns the parsed JSON and, when the file has no default group and no names were given,
    the target names it fell back to.
    """
    if shutil.which("docker") is None:
        raise BakegenError(
            f"{bake_file}: --from-bake reads bake files through `docker buildx bake --print`, and there is no docker CLI on PATH"
        )
    command = ["docker", "buildx", "bake", "--file", bake_file.name, "--print", *names]
    try:
        result = subprocess.run(command, cwd=bake_file.parent, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise BakegenError(f"{bake_file}: `{shlex.join(command)}` did not answer within 120 s") from None
    if result.returncode != 0:
        errors = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        if not names and any("failed to find target default" in line for line in errors):
            declared = declared_target_names(bake_file)
            if declared:
                printed, _ = bake_print(bake_file, declared)
                return printed, declared
        reason = next(
            (line for line in reversed(errors) if line.startswith("ERROR")), errors[-1] if errors else f"exit code {result.returncode}"
        )
        raise BakegenError(f"{bake_file}: `{shlex.join(command)}` failed: {reason}")
    try:
        printed = json.loads(result.stdout)
    except ValueError:
        raise BakegenError(f"{bake_file}: `{shlex.join(command)}` did not print JSON") from None
    if not isinstance(printed, dict) or not isinstance(printed.get("target", {}), dict):
        raise BakegenError(f"{bake_file}: unexpected output of `{shlex.join(command)}`")
    return printed, []


def declared_target_names(bake_file: Path) -> list[str]:
    """Targets a bake file declares, for a file without a default group. Names starting with
    `_` are taken for bases that others inherit from, as is the convention."""
    try:
        text = bake_file.read_text(encoding="utf-8")
        if bake_file.suffix == ".json":
            names = list(json.loads(text).get("target", {}))
        elif bake_file.suffix in (".yml", ".yaml"):
            names = list((yaml.safe_load(text) or {}).get("services", {}))
        else:
            names = re.findall(r'(?m)^\s*target\s+"([^"]+)"\s*\{', text)
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return []
    return [n for n in dict.fromkeys(str(n) for n in names) if not n.startswith("_")]


def _target_order(printed: Mapping[str, Any]) -> list[str]:
    """Targets in the order of the default group (what --print was asked for), then the rest."""
    groups: Mapping[str, Any] = printed.get("group") or {}
    targets: Mapping[str, Any] = printed.get("target") or {}
    order: list[str] = []

    def visit(name: str, depth: int) -> None:
        if name in targets:
            if name not in order:
                order.append(name)
        elif name in groups and depth < 32:
            for member in groups[name].get("targets") or []:
                visit(member, depth + 1)

    visit("default", 0)
    return order + sorted(n for n in targets if n not in order)


def split_reference(reference: str) -> tuple[str, str] | None:
    """repository, tag of an image reference (tag `latest` when none); None for digests."""
    if "@" in reference:
        return None
    colon = reference.rfind(":")
    if colon > reference.rfind("/"):
        return reference[:colon], reference[colon + 1 :]
    return reference, "latest"


def draft_from_bake(
    bake_file: Path, names: Sequence[str], spec_dir: Path, repository: str | None = None
) -> tuple[SpecDraft, list[Diagnostic]]:
    if not bake_file.is_file():
        raise BakegenError(f"{bake_file}: no such file")
    bake_file = bake_file.absolute()
    bake_dir = bake_file.parent
    printed, fell_back = bake_print(bake_file, names)
    shown = _shown(bake_file)
    notes: list[Diagnostic] = []
    if fell_back:
        notes.append(
            Diagnostic(
                shown,
                0,
                0,
                "",
                f"has no default group; read every target it declares ({', '.join(fell_back)}); choose with --target",
                "warning",
            )
        )
    report = _Report(shown)
    raw: Mapping[str, Any] = printed.get("target") or {}
    order = _target_order(printed)
    if not order:
        raise BakegenError(f"{shown}: `docker buildx bake --print` shows no targets")

    # Context: bakegen has one per spec. The most common one wins; other targets are reported.
    context = Counter(str(raw[n].get("context", ".")) for n in order).most_common(1)[0][0]
    parsed: dict[Path, tuple[DockerfileInfo, ScannedDockerfile] | None] = {}
    targets: list[BakeTarget] = []
    references: dict[str, list[tuple[str, str]]] = {}
    for name in order:
        attributes: Mapping[str, Any] = raw[name]
        for attribute in attributes:
            if attribute not in MODELLED_BAKE_ATTRIBUTES and attribute != "dockerfile-inline":
                report.add("unmodelled", attribute, name)
        target = _bake_target(name, attributes, context, bake_dir, parsed, report)
        if target is None:
            continue
        targets.append(target)
        references[name] = []
        for reference in attributes.get("tags") or []:
            split = split_reference(str(reference))
            if split is None:
                report.add("digest", f"tags {reference}", name)
            else:
                references[name].append(split)
    if not targets:
        raise BakegenError([replace(n, severity="error") for n in notes + report.diagnostics()])

    # The repository: the one most tags use. Tags in others, and tags given twice, are reported.
    repositories = Counter(repo for refs in references.values() for repo, _ in refs)
    carried_repository = repositories.most_common(1)[0][0] if repositories else None
    if carried_repository is not None and not _REPOSITORY.fullmatch(carried_repository):
        for name, refs in references.items():
            if any(repo == carried_repository for repo, _ in refs):
                report.add("repository", f"tags {carried_repository}", name)
        carried_repository = None
    owner: dict[str, str] = {}
    with_tags = []
    for target in targets:
        tags: list[str] = []
        for repo, tag in references[target.name]:
            if carried_repository is None:
                continue
            if repo != carried_repository:
                report.add("other-repository", f"tags {repo}:{tag}", target.name)
            elif owner.setdefault(tag, target.name) != target.name:
                report.add("duplicate", f"tags {repo}:{tag}", target.name)
            elif tag not in tags:
                tags.append(tag)
        if not tags:
            report.add("no-tags", "tags", target.name)
        with_tags.append(replace(target, tags=tuple(tags)))
    targets = with_tags

    draft, renamed = _variants_from_targets(targets)
    annotations = _common_annotations(targets, report)
    notes += report.diagnostics()
    for old, new in renamed:
        notes.append(Diagnostic(shown, 0, 0, "", f"target {old} is now {new} (bakegen names targets STAGE-VARIANT)", "warning"))
    header = [
        f"Generated by `bakegen init` from {shown}, as `docker buildx bake --print` resolved it",
        "(bake variables are written as the values they had). A starting point, meant to be edited;",
        "then run `bakegen validate --strict` and `bakegen render`.",
    ]
    if report.not_carried():
        header.append(f"Not carried over (init listed them on stderr): {', '.join(report.not_carried())}.")
    if report.left_out():
        header.append(f"Targets left out: {', '.join(report.left_out())}.")
    return (
        replace(
            draft,
            repository=repository or carried_repository or guess_repository(bake_dir),
            repository_guessed=repository is None and carried_repository is None,
            context=_relative(bake_dir / context, spec_dir),
            annotations=annotations,
            header=tuple(header),
        ),
        notes,
    )


def _bake_target(
    name: str,
    attributes: Mapping[str, Any],
    context: str,
    bake_dir: Path,
    parsed: dict[Path, tuple[DockerfileInfo, ScannedDockerfile] | None],
    report: _Report,
) -> BakeTarget | None:
    """One printed target as bakegen can build it, or None (reported) when it cannot."""
    target_context = str(attributes.get("context", "."))
    if "dockerfile-inline" in attributes:
        report.add("skipped-inline", "dockerfile-inline", name)
        return None
    if target_context != context:
        report.add("skipped-context", f"context {target_context}", name)
        return None
    if "://" in context or context.startswith("git@"):
        report.add("skipped-remote", f"context {context}", name)
        return None
    dockerfile = str(attributes.get("dockerfile", "Dockerfile"))
    path = Path(bake_dir, context, dockerfile)
    if path not in parsed:
        try:
            parsed[path] = (parse_dockerfile(path), scan_dockerfile(path.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            parsed[path] = None
    found = parsed[path]
    if found is None:
        report.add("skipped-missing", f"dockerfile {dockerfile}", name)
        return None
    info, scanned = found
    stage = str(attributes.get("target") or "").lower()
    if not stage:
        # Without `target` bake builds the last stage; bakegen always names one, so it needs a name.
        last = scanned.stages[-1].name if scanned.stages else None
        if last is None:
            report.add("skipped-unnamed", f"dockerfile {dockerfile}", name)
            return None
        stage = last
    if stage not in info.stages:
        report.add("skipped-stage", f"target {stage}", name)
        return None
    if not _NAME.fullmatch(stage):
        report.add("skipped-stagename", f"target {stage}", name)
        return None
    args = []
    for arg, value in sorted((attributes.get("args") or {}).items()):
        if value is None:
            continue
        if arg in info.args and _IDENTIFIER.fullmatch(arg):
            args.append((arg, str(value)))
        else:
            report.add("undeclared", f"args.{arg}", name)
    platforms = []
    for platform in attributes.get("platforms") or []:
        if platform_problem(str(platform)) is None:
            platforms.append(str(platform))
        else:
            report.add("platform", f"platforms {platform}", name)
    if not attributes.get("platforms"):
        report.add("native", "platforms", name)
    return BakeTarget(
        name=name,
        stage=stage,
        context=context,
        dockerfile=dockerfile,
        platforms=tuple(dict.fromkeys(platforms or ["linux/amd64"])),
        args=tuple(args),
        tags=(),
        labels=tuple(sorted((str(k), str(v)) for k, v in (attributes.get("labels") or {}).items() if v is not None)),
        annotations=tuple(str(a) for a in attributes.get("annotations") or []),
    )


def _common_annotations(targets: Sequence[BakeTarget], report: _Report) -> tuple[tuple[str, str], ...]:
    """bakegen's annotations apply to every target: carried when all targets have the same ones."""
    if len({t.annotations for t in targets}) > 1:
        for target in targets:
            if target.annotations:
                report.add("annotations-differ", "annotations", target.name)
        return ()
    pairs = [a.partition("=") for a in targets[0].annotations]
    if all(sep for _, sep, _ in pairs) and len({k for k, _, _ in pairs}) == len(pairs):
        return tuple(sorted((k, v) for k, _, v in pairs))
    for target in targets:
        report.add("annotations", "annotations", target.name)
    return ()


_BAKE_MESSAGES = {
    "unmodelled": "not modelled by bakegen; not carried over",
    "skipped-inline": "bakegen needs a Dockerfile file; target left out",
    "skipped-context": "bakegen has one build context per spec (here the most common one); target left out: give it a spec of its own",
    "skipped-remote": "a remote context cannot be checked against its Dockerfile; target left out",
    "skipped-missing": "the Dockerfile does not exist; target left out",
    "skipped-unnamed": "the target builds the Dockerfile's last stage, which has no name (bakegen builds named stages: add `AS NAME`); target left out",
    "skipped-stage": "the Dockerfile has no such stage; target left out",
    "skipped-stagename": "bakegen stage names use letters, digits, - and _; target left out",
    "undeclared": "not declared by the target's Dockerfile (bakegen validate --strict rejects it); not carried over",
    "platform": "a platform bakegen does not know; left out",
    "native": "none set (bake builds the native platform); bakegen's default linux/amd64 is written",
    "digest": "a digest reference is not a tag; not carried over",
    "repository": "not a repository bakegen accepts; the directory name is used instead",
    "other-repository": "in another repository than the spec's (bakegen tags one repository); not carried over",
    "duplicate": "given to an earlier target too (bakegen gives each tag to one image); not carried over",
    "no-tags": "no tags carried; bakegen tags every image, so the spec's tag template applies",
    "annotations": "not KEY=VALUE pairs with distinct keys; not carried over",
    "annotations-differ": "bakegen's annotations apply to every target, and these differ between targets; not carried over",
}
_NOT_CARRIED_KINDS = frozenset({"unmodelled", "undeclared", "digest", "other-repository", "duplicate", "annotations", "annotations-differ"})


def _variants_from_targets(targets: list[BakeTarget]) -> tuple[SpecDraft, list[tuple[str, str]]]:
    """Group targets into variants x stages. Returns the draft (no repository yet) and renamed targets."""
    common_labels = set(targets[0].labels)
    for target in targets[1:]:
        common_labels &= set(target.labels)
    labels = tuple(sorted(common_labels))

    # Tags as `{stage}{suffix}` when every tag starts with its target's stage: the rest is the
    # variant's suffix (and aliases). Otherwise `{suffix}` alone, one variant per target.
    by_stage = all(tag.startswith(t.stage) for t in targets for tag in t.tags)
    template = "{stage}{suffix}" if by_stage else "{suffix}"

    def residues(target: BakeTarget) -> tuple[str, ...]:
        return tuple(tag[len(target.stage) :] if by_stage else tag for tag in target.tags)

    def shape(target: BakeTarget) -> tuple[Any, ...]:
        variant_labels = tuple(pair for pair in target.labels if pair not in common_labels)
        return (target.dockerfile, target.platforms, target.args, variant_labels, residues(target))

    # Candidate variants: STAGE-REST names the target of stage STAGE in variant REST.
    groups: dict[str, list[BakeTarget]] = {}
    for target in targets:
        rest = target.name[len(target.stage) + 1 :] if target.name.startswith(f"{target.stage}-") else ""
        key = rest if by_stage and rest and _NAME.fullmatch(rest) else f"\0{target.name}"
        groups.setdefault(key, []).append(target)
    members: list[tuple[str, list[BakeTarget]]] = []
    for key, group in groups.items():
        if not key.startswith("\0") and len({shape(t) for t in group}) == 1 and len({t.stage for t in group}) == len(group):
            members.append((key, group))
        else:
            members += [(t.name, [t]) for t in group]

    stages = tuple(dict.fromkeys(t.stage for t in targets))
    names = _Names(stages)
    variants: list[VariantDraft] = []
    renamed: list[tuple[str, str]] = []
    for wanted, group in members:
        first = group[0]
        name = names.take(wanted, [t.stage for t in group])
        for target in group:
            if f"{target.stage}-{name}" != target.name:
                renamed.append((target.name, f"{target.stage}-{name}"))
        suffixes: tuple[str, ...] | None = tuple(dict.fromkeys(residues(first))) or None
        if suffixes is None and not by_stage:
            suffixes = (f"{first.stage}-{name}",)  # `{suffix}` alone must still make a valid tag
        variants.append(
            VariantDraft(
                name=name,
                dockerfile=first.dockerfile,
                stages=tuple(s for s in stages if s in {t.stage for t in group}),
                platforms=first.platforms,
                suffixes=suffixes,
                args=first.args,
                labels=tuple(pair for pair in first.labels if pair not in common_labels),
            )
        )
    draft = SpecDraft(
        repository="", repository_guessed=False, context=".", stages=stages, tags=(template,), variants=tuple(variants), labels=labels
    )
    return draft, renamed


# --- the spec as data, and as YAML -----------------------------------------------------------


def spec_data(draft: SpecDraft) -> dict[str, Any]:
    """The spec as plain data. ARGs whose defaults differ between variants get their own variables
    (CUDA_VERSION, then ROCM_CUDA_VERSION): one bake variable has one default."""
    arg_names = {arg for v in draft.variants for arg, _ in v.args}
    image_variable = next((n for n in IMAGE_VARIABLES if n not in arg_names), None)
    counter = 2
    while image_variable is None:
        image_variable = None if f"REPO_{counter}" in arg_names else f"REPO_{counter}"
        counter += 1
    defaults: dict[str, str] = {image_variable: draft.repository}
    data: dict[str, Any] = {
        "version": 1,
        "image": {"repository": draft.repository, "variable": image_variable},
        "context": draft.context,
        "stages": list(draft.stages),
        "tags": list(draft.tags),
    }
    if draft.labels:
        data["labels"] = dict(draft.labels)
    if draft.annotations:
        data["annotations"] = dict(draft.annotations)
    variants: dict[str, Any] = {}
    for variant in draft.variants:
        entry: dict[str, Any] = {"dockerfile": variant.dockerfile, "platforms": list(variant.platforms)}
        if variant.suffixes is not None:
            suffix, *aliases = variant.suffixes
            if suffix != f"-{variant.name}":
                entry["suffix"] = suffix
            if aliases:
                entry["aliases"] = aliases
        if variant.stages != draft.stages:
            entry["stages"] = list(variant.stages)
        args: dict[str, Any] = {}
        for arg, value in variant.args:
            if defaults.setdefault(arg, value) == value:
                args[arg] = value
                continue
            prefix = re.sub(r"[^A-Za-z0-9]", "_", variant.name).upper()
            variable, n = f"{prefix}_{arg}", 2
            while defaults.setdefault(variable, value) != value:
                variable, n = f"{prefix}_{arg}_{n}", n + 1
            args[arg] = {"value": value, "variable": variable}
        if args:
            entry["args"] = args
        if variant.labels:
            entry["labels"] = dict(variant.labels)
        variants[variant.name] = entry
    data["variants"] = variants
    return data


def spec_yaml(draft: SpecDraft, data: Mapping[str, Any]) -> str:
    """The spec as commented YAML (the data is written by hand so comments sit where they help)."""
    comments: dict[SpecPath, str] = {}
    if draft.repository_guessed:
        comments[("image", "repository")] = "a guess from the directory name: set your registry and namespace"
    if draft.stages_comment:
        comments[("stages",)] = draft.stages_comment
    if draft.platforms_comment:
        comments[("variants", draft.variants[0].name, "platforms")] = draft.platforms_comment
    for variant in draft.variants:
        for key, comment in variant.comments:
            path: SpecPath = ("variants", variant.name, *key.split(".", 1))
            comments[path] = comment
    lines = [f"# yaml-language-server: $schema={SCHEMA_URL}", "#"]
    lines += [f"# {line}" for line in draft.header]
    for key, value in data.items():
        lines.append("")
        _emit(lines, key, value, 0, (key,), comments)
    return "\n".join(lines) + "\n"


_FLOW_LISTS = frozenset({"stages", "platforms", "aliases"})


def _emit(lines: list[str], key: str, value: Any, indent: int, path: SpecPath, comments: Mapping[SpecPath, str]) -> None:
    pad = " " * indent
    comment = f"   # {comments[path]}" if path in comments else ""
    head = f"{pad}{_scalar(key, 'key')}:"
    if isinstance(value, dict):
        lines.append(head + comment)
        for child_key, child in value.items():
            _emit(lines, child_key, child, indent + 2, (*path, child_key), comments)
    elif isinstance(value, list) and key in _FLOW_LISTS:
        lines.append(f"{head} [{', '.join(_scalar(item, 'flow') for item in value)}]{comment}")
    elif isinstance(value, list):
        lines.append(head + comment)
        lines += [f"{pad}  - {_scalar(item, 'value', quote=True)}" for item in value]
    elif isinstance(value, int):
        lines.append(f"{head} {value}{comment}")
    else:
        lines.append(f"{head} {_scalar(value, 'value')}{comment}")


@cache
def _scalar(text: str, context: str, quote: bool = False) -> str:
    """Plain when YAML reads it back as the same string in this context; double-quoted otherwise."""
    if not quote and _PLAIN_SCALAR.fullmatch(text):
        probe = {"key": f"{text}: v", "flow": f"[{text}]", "value": f"k: {text}"}[context]
        expected: Any = {"key": {text: "v"}, "flow": [text], "value": {"k": text}}[context]
        try:
            if yaml.safe_load(probe) == expected:
                return text
        except yaml.YAMLError:
            pass
    quoted = json.dumps(text, ensure_ascii=False)
    # JSON leaves these raw; YAML reads them as line breaks (NEL, LS, PS) or rejects them as unprintable.
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


def check_generated(text: str, data: dict[str, Any], spec_path: Path) -> list[Diagnostic]:
    """What `bakegen validate --strict` would say about the spec: schema, semantics, Dockerfiles
    (warnings included). Checked in memory, so nothing is written to find out."""
    where = str(spec_path)
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [Diagnostic(where, 0, 0, "", f"the YAML written does not parse: {exc}")]
    if loaded != data:
        return [Diagnostic(where, 0, 0, "", "the YAML written does not read back as the spec built")]
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads(resources.read_text("bakegen.schema.json")))
    problems = [Diagnostic(where, 0, 0, format_path(tuple(e.absolute_path)), e.message) for e in validator.iter_errors(loaded)]
    if problems:
        return problems
    # The Dockerfiles are looked up as validate will once the spec is written. The context is made
    # absolute (and normalised) because the spec's directory may not exist yet, and `missing/..`
    # does not resolve.
    spec_dir = spec_path.absolute().parent
    checked = {**loaded, "context": os.path.normpath(spec_dir / loaded.get("context", "."))}
    spec = Spec(spec_path.absolute(), checked)
    plan, found = build_plan(spec)
    return [*found, *dockerfile_problems(spec, plan)]
