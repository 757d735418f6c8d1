"""`bakegen init` from Dockerfiles: find them, scan stages and ARGs, and draft one variant per Dockerfile."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from bakegen.errors import BakegenError, Diagnostic
from bakegen.init.common import (
    _DIRECTIVE,
    _HEREDOC,
    _IDENTIFIER,
    _NAME,
    DEFAULT_VARIANT,
    MAX_DOCKERFILES,
    NOT_DOCKERFILE_SUFFIXES,
    SKIPPED_DIRECTORIES,
    SpecDraft,
    VariantDraft,
    _Names,
    _predefined,
    _relative,
    _shown,
    guess_repository,
    sanitize_name,
)

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
