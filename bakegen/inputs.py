"""The inputs digest of one target on one platform: a sha256 that changes when what the build reads changes.

bakegen can skip building and pushing a target whose published image carries the digest it would get now.
The digest is the sha256 (hex) of a canonical JSON document (sorted keys, no spaces, ASCII) of:

- `format` ("bakegen-inputs/1") and bakegen's version, so a new bakegen never trusts an old digest;
- the Dockerfile's bytes;
- the ignore file that applies (`<Dockerfile>.dockerignore` beside the Dockerfile when it exists, as BuildKit
  does, else the context's `.dockerignore`): its bytes;
- the build context as the build sees it, after the ignore file, matched with docker-py's implementation of
  docker's rules: every file's POSIX path relative to the context, whether it is executable (owner x bit),
  and the sha256 of its content; a symlink's target text (links are sent, not followed); any other
  file (FIFO, socket, device) by its type. The ignore file and the Dockerfile (when it is inside the
  context) are always counted, as docker always sends them. Given `sources` (`context_sources`: the paths
  the target's COPY/ADD and RUN bind mounts name, which is all BuildKit sends), only files under them count;
- the build args (name -> value, all of them) and the target stage (lower case, as docker compares them);
- the platform;
- the identity of every image the target's stages start from or copy from (`FROM`, `COPY --from`,
  `RUN --mount=from=`): an image ID in the local engine or a manifest digest in a registry (see
  `bakegen.runners.baseimages`), "scratch" for `FROM scratch`; stages the target does not use are left out.

What does NOT change the digest (on purpose): the context's location, file modification times, owners,
permission bits other than the executable bit (a checkout's umask), directory listing order, empty directories,
ignored files, and stages the target does not depend on. BuildKit's own cache ignores mtimes and owners too.

Honest limits — the digest cannot see what a build fetches while it runs:
- network inputs of `RUN` (`apt-get install`, `pip install`, `curl`, `git clone`): a newer package version
  published upstream does NOT change the digest; pin versions, or rebuild on a schedule without skipping;
- `ADD https://...` and `ADD git@...` sources: only their URL text, in the Dockerfile, counts;
- the `# syntax=` frontend image and `ONBUILD` triggers of a base image: only as far as the Dockerfile's
  text and the base image's identity reach;
- secrets and SSH mounts, the builder's configuration, `--no-cache` or `--pull`;
- a `FROM --platform=...` for another platform than the target's (`$BUILDPLATFORM` in a cross build) is
  identified by the image as resolved for the target's platform; its other platforms' manifests usually
  change with it, but need not;
- a local base image shadows the registry's one (as with the docker driver); a `docker-container` builder
  pulls from the registry instead.
Everything here is pure computation: no Docker call (the identities are passed in).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import posixpath
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Literal

from bakegen import __version__
from bakegen.errors import BakegenError, Diagnostic

FORMAT = "bakegen-inputs/1"
# The label every image bakegen builds carries: its inputs digest (bakegen.unchanged compares it).
INPUTS_LABEL = "org.bakegen.inputs.digest"
# Files up to this size are read in one call; bigger ones are streamed through one buffer of this size.
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ContextFile:
    """One entry of the build context the build can see."""

    path: str  # POSIX, relative to the context
    kind: Literal["file", "symlink", "other"]
    executable: bool
    content: str  # file: sha256 hex of its bytes; symlink: its target text; other: its file type

    def canonical(self) -> str:
        return json.dumps([self.path, self.kind, self.executable, self.content], ensure_ascii=True, separators=(",", ":"))


def inputs_digest(
    *,
    dockerfile: Path,
    context: Path,
    stage: str,
    args: Mapping[str, str],
    platform: str,
    base_images: Mapping[str, str],
    extra: Mapping[str, str] | None = None,
    sources: Sequence[str] | None = None,
) -> str:
    """The sha256 (hex) of everything a target's build for one platform reads (see the module docstring).
    `extra`: other settings of the build that shape the image (labels, bake `--set` overrides), by name.
    `sources`: only the context files under these paths count (`context_sources`); None: all of them."""
    document = inputs_document(
        dockerfile=dockerfile, context=context, stage=stage, args=args, platform=platform, base_images=base_images, extra=extra,
        sources=sources,
    )  # fmt: skip
    return hashlib.sha256(canonical_json(document)).hexdigest()


def inputs_document(
    *,
    dockerfile: Path,
    context: Path,
    stage: str,
    args: Mapping[str, str],
    platform: str,
    base_images: Mapping[str, str],
    extra: Mapping[str, str] | None = None,
    sources: Sequence[str] | None = None,
) -> dict[str, object]:
    """The document `inputs_digest` hashes; the context stands in it as a count and a digest of its entries.
    `extra` is a key of its own only when given, so digests without it stay what they were."""
    ignore_file = dockerignore_path(context, dockerfile)
    files = context_files(context, dockerfile, sources)
    context_hash = hashlib.sha256()
    for entry in files:
        context_hash.update(entry.canonical().encode("ascii") + b"\n")
    document: dict[str, object] = {
        "format": FORMAT,
        "bakegen": __version__,
        "dockerfile": _read_sha256(dockerfile),
        "dockerignore": _read_sha256(ignore_file) if ignore_file else None,
        "context": {"entries": len(files), "sha256": context_hash.hexdigest()},
        "args": dict(args),
        "stage": stage.lower(),
        "platform": platform,
        "base_images": dict(base_images),
    }
    if extra:
        document["extra"] = dict(extra)
    return document


def canonical_json(document: object) -> bytes:
    """One byte string per document: sorted keys, no whitespace, ASCII only (file names that are not
    UTF-8 come out as \\udcXX escapes), so equal documents hash equally on every machine and Python."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def is_under(path: str, sources: Sequence[str]) -> bool:
    """Whether a context file (POSIX path) is one a COPY/ADD source names: the path itself, a file in a
    directory it names, or a match of its wildcards (`*`, `?`, `[...]`, each within one path segment)."""
    parts = path.split("/")
    for source in sources:
        pattern = posixpath.normpath("/" + source).lstrip("/").split("/")
        if len(pattern) <= len(parts) and all(fnmatch.fnmatchcase(part, want) for part, want in zip(parts, pattern, strict=False)):
            return True
    return False


def dockerignore_path(context: Path, dockerfile: Path) -> Path | None:
    """The ignore file the build uses: `<Dockerfile>.dockerignore` beside the Dockerfile wins over the
    context's `.dockerignore` (BuildKit's rule; this machine's buildx 0.13 follows it)."""
    specific = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if specific.is_file():
        return specific
    general = context / ".dockerignore"
    return general if general.is_file() else None


def dockerignore_patterns(text: str) -> list[str]:
    """Patterns of an ignore file as docker reads them (moby's ignorefile.ReadAll): a BOM dropped, a line
    starting with `#` is a comment, surrounding space trimmed, `!` kept as the exception marker."""
    patterns: list[str] = []
    for line in text.removeprefix("\ufeff").split("\n"):
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        negated = pattern.startswith("!")
        if negated:
            pattern = pattern[1:].strip()
        patterns.append(("!" if negated else "") + pattern)
    return patterns


def context_files(context: Path, dockerfile: Path, sources: Sequence[str] | None = None) -> list[ContextFile]:
    """The files of the context the build can see, sorted by path. Directories are not entries: an empty
    one is not an input, a full one is its files. Unreadable files are errors, never skipped.
    `sources`: only the files under these paths (`context_sources`), the others not even read."""
    from docker.utils.build import exclude_paths  # docker-py: the same matching as `docker build`

    if not context.is_dir():
        raise _file_error(context, "the build context is not a directory")
    ignore_file = dockerignore_path(context, dockerfile)
    patterns = dockerignore_patterns(_read_text(ignore_file)) if ignore_file else []
    try:
        relative_dockerfile = dockerfile.resolve().relative_to(context.resolve()).as_posix()
    except ValueError:
        # A Dockerfile outside the context is sent on its own (and hashed on its own); `.dockerignore` is
        # a name exclude_paths already keeps, so naming it un-ignores nothing else.
        relative_dockerfile = ".dockerignore"
    try:
        visible = exclude_paths(str(context), list(patterns), dockerfile=relative_dockerfile)
    except OSError as exc:
        raise _file_error(exc.filename or context, f"cannot read the build context: {exc.strerror}") from None
    except re.error as exc:
        raise _file_error(ignore_file, f"bad pattern: {exc}") from None
    root = str(context)
    if sources is not None:  # only these paths are sent to the builder: the others are never read
        visible = [relative for relative in visible if is_under(relative.replace(os.sep, "/"), sources)]
    entries = [entry for entry in (_entry(root, relative) for relative in visible) if entry is not None]
    return sorted(entries, key=lambda entry: entry.path)


def _entry(root: str, relative: str) -> ContextFile | None:
    # Plain strings and os calls, not pathlib: this runs once per file of contexts with many thousands.
    path = os.path.join(root, relative)
    posix = relative.replace(os.sep, "/")
    try:
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode):
            return None
        if stat.S_ISLNK(info.st_mode):
            return ContextFile(posix, "symlink", False, os.readlink(path))
        if stat.S_ISREG(info.st_mode):
            return ContextFile(posix, "file", bool(info.st_mode & stat.S_IXUSR), _file_sha256(path, info.st_size))
    except OSError as exc:
        raise _file_error(path, f"cannot read a file of the build context: {exc.strerror}") from None
    return ContextFile(posix, "other", False, _file_type(info.st_mode))


def _file_type(mode: int) -> str:
    for name, test in (("fifo", stat.S_ISFIFO), ("socket", stat.S_ISSOCK), ("char-device", stat.S_ISCHR), ("block-device", stat.S_ISBLK)):
        if test(mode):
            return name
    return f"mode-{stat.S_IFMT(mode):o}"


def _file_error(path: object, message: str) -> BakegenError:
    """A problem with one file, as a diagnostic naming it (`PATH: message`)."""
    return BakegenError([Diagnostic(str(path), 0, 0, "", message)])


def _file_sha256(path: Path | str, size: int | None = None) -> str:
    """Streamed: a file of any size costs one buffer of memory."""
    with open(path, "rb", buffering=0) as stream:
        if size is not None and size <= _CHUNK:
            return hashlib.sha256(stream.read()).hexdigest()
        digest = hashlib.sha256()
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        while count := stream.readinto(buffer):
            digest.update(view[:count])
        return digest.hexdigest()


def _read_sha256(path: Path) -> str:
    try:
        return _file_sha256(path)
    except OSError as exc:
        raise _file_error(path, f"cannot read it: {exc.strerror}") from None


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="surrogateescape")
    except OSError as exc:
        raise _file_error(path, f"cannot read it: {exc.strerror}") from None


# --- Dockerfile: which images a stage is built from ------------------------------------------------------------------

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class _Instruction:
    line: int  # 1-based line of its first physical line
    keyword: str  # upper case
    rest: str


@dataclass
class _Stage:
    index: int
    name: str  # lower case; "" for an unnamed stage
    base: str  # the expanded FROM image or stage name
    line: int
    sources: list[str]  # expanded `--from` values of COPY/ADD and RUN --mount, in order
    # Context paths its COPY/ADD sources and RUN bind mounts name; None when one reads the whole context.
    context: list[str] | None = dataclass_field(default_factory=list)


class _DockerfileProblem(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line, self.message = line, message
        super().__init__(message)


def platform_args(platform: str, build_platform: str | None = None) -> dict[str, str]:
    """BuildKit's automatic platform ARGs (TARGETPLATFORM, TARGETARCH, BUILDOS, ...)."""
    out: dict[str, str] = {}
    for prefix, value in (("TARGET", platform), ("BUILD", build_platform or platform)):
        os_name, _, rest = value.partition("/")
        arch, _, variant = rest.partition("/")
        out.update({f"{prefix}PLATFORM": value, f"{prefix}OS": os_name, f"{prefix}ARCH": arch, f"{prefix}VARIANT": variant})
    return out


def base_image_references(
    dockerfile_text: str,
    stage: str,
    args: Mapping[str, str],
    *,
    platform: str | None = None,
    build_platform: str | None = None,
    source: str = "Dockerfile",
) -> list[str]:
    """The images `stage` is built from, in Dockerfile order, each once: `FROM` of the stages it depends on
    (through `FROM <stage>`, `COPY --from` and `RUN --mount=from=`), and images named by `--from`.
    `scratch` stays "scratch". Variables expand as in BuildKit: `FROM` sees the global ARGs (defaults,
    overridden by `args` for those declared) and, when `platform` is given, the automatic platform ARGs;
    `--from` sees the stage's ARGs. `source` names the Dockerfile in error messages."""
    return _dependencies(dockerfile_text, stage, args, platform=platform, build_platform=build_platform, source=source)[0]


def context_sources(
    dockerfile_text: str,
    stage: str,
    args: Mapping[str, str],
    *,
    platform: str | None = None,
    build_platform: str | None = None,
    source: str = "Dockerfile",
) -> list[str] | None:
    """The context paths (patterns, as written after expansion) that the stages `stage` depends on read
    through `COPY`/`ADD` without `--from` and `RUN --mount` binds of the context; None when one of them
    reads the whole context (`COPY . /src`, a bind mount of the context's root). BuildKit sends the
    builder only these paths, so other files of the context cannot change the image."""
    return _dependencies(dockerfile_text, stage, args, platform=platform, build_platform=build_platform, source=source)[1]


def _dependencies(
    dockerfile_text: str, stage: str, args: Mapping[str, str], *, platform: str | None, build_platform: str | None, source: str
) -> tuple[list[str], list[str] | None]:
    try:
        stages = _stages(_instructions(dockerfile_text), args, platform_args(platform, build_platform) if platform else {})
    except _DockerfileProblem as exc:
        raise BakegenError([Diagnostic(source, exc.line, 1 if exc.line else 0, "", exc.message)]) from None
    target = stage.lower()
    chosen = next((s for s in stages if s.name == target), None) if target else (stages[-1] if stages else None)
    if chosen is None:
        names = ", ".join(s.name for s in stages if s.name) or "none"
        raise BakegenError([Diagnostic(source, 0, 0, "", f"no stage {stage!r} (stages: {names})")])
    by_name = {s.name: s for s in stages if s.name}

    def stage_named(name: str, before: int | None) -> _Stage | None:
        found = by_name.get(name.lower())
        if found is None and name.isdigit() and before is None and int(name) < len(stages):
            found = stages[int(name)]  # COPY --from=0
        if found is not None and before is not None and found.index >= before:
            return None  # FROM names only earlier stages; a later one of that name is an image
        return found

    needed: set[int] = set()
    pending = [chosen]
    while pending:
        current = pending.pop()
        if current.index in needed:
            continue
        needed.add(current.index)
        base = stage_named(current.base, current.index)
        pending += [base] if base else []
        pending += [found for name in current.sources if (found := stage_named(name, None)) is not None]
    references: dict[str, None] = {}
    paths: dict[str, None] | None = {}
    for current in stages:
        if current.index not in needed:
            continue
        if stage_named(current.base, current.index) is None:
            references[current.base] = None
        for name in current.sources:
            if stage_named(name, None) is None:
                references[name] = None
        if current.context is None or paths is None:
            paths = None
        else:
            paths.update(dict.fromkeys(current.context))
    return list(references), None if paths is None else list(paths)


def _stages(instructions: Iterator[tuple[_Instruction, str]], args: Mapping[str, str], automatic: Mapping[str, str]) -> list[_Stage]:
    meta: dict[str, str] = dict(automatic)  # what FROM lines see
    stages: list[_Stage] = []
    scope: dict[str, str] = {}  # what the current stage's instructions see
    for instruction, escape in instructions:
        where = instruction.line
        if instruction.keyword == "FROM":
            words = [word for word in instruction.rest.split() if not word.startswith("--")]
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
                raise _DockerfileProblem(where, f"FROM needs IMAGE [AS NAME], got {instruction.rest!r}")
            base = _expand(words[0], meta, escape, where)
            if not base:
                raise _DockerfileProblem(where, f"FROM {words[0]} names no image (is an ARG missing?)")
            name = words[2].lower() if len(words) == 3 else ""
            stages.append(_Stage(len(stages), name, base, instruction.line, []))
            scope = {}
        elif instruction.keyword == "ARG":
            target = scope if stages else meta
            for word in _split_words(instruction.rest, escape):
                name, has_default, default = word.partition("=")
                if name in args:
                    target[name] = args[name]
                elif has_default:
                    target[name] = _expand(default, target, escape, where)
                elif stages and name in meta:
                    target[name] = meta[name]  # `ARG NAME` in a stage inherits the global value
        elif stages and instruction.keyword in {"COPY", "ADD", "RUN"}:
            stages[-1].sources += [_expand(value, scope, escape, where) for value in _from_flags(instruction)]
            read = _context_reads(instruction, scope, escape)
            current_context = stages[-1].context
            stages[-1].context = None if read is None or current_context is None else current_context + read
    if not stages:
        raise _DockerfileProblem(0, "no FROM instruction")
    return stages


def _context_reads(instruction: _Instruction, scope: Mapping[str, str], escape: str) -> list[str] | None:
    """The context paths one COPY/ADD/RUN reads ([] for none); None for the whole context, or when bakegen
    cannot tell (a JSON-form source list it cannot read, a variable it cannot expand): counting the whole
    context can only rebuild too often, never skip a change."""
    words = _split_words(instruction.rest, escape)
    flags = [word for word in words if word.startswith("--")]
    if instruction.keyword == "RUN":
        paths: list[str] = []
        for flag in flags:
            name, _, value = flag[2:].partition("=")
            if name != "mount":
                continue
            settings = dict(field.strip().partition("=")[::2] for field in value.split(","))
            if settings.get("type", "bind") != "bind" or settings.get("from"):
                continue
            paths.append(settings.get("source") or settings.get("src") or ".")
        return None if any(_whole(path) for path in paths) else paths
    if any(flag.startswith("--from") for flag in flags):
        return []
    rest = words[len(flags) :]
    if rest and rest[0].startswith("["):
        try:
            rest = [str(item) for item in json.loads(" ".join(rest))]
        except ValueError:
            return None
    sources = [word for word in rest[:-1] if not word.startswith("<<")]
    try:
        expanded = [_expand(word, scope, escape, instruction.line) for word in sources]
    except _DockerfileProblem:
        return None
    # ADD of a URL or a git repository reads no context file (its URL is in the Dockerfile's text).
    expanded = [path for path in expanded if not re.match(r"^(https?://|git@|git://)", path)]
    return None if any(_whole(path) for path in expanded) else expanded


def _whole(path: str) -> bool:
    return posixpath.normpath("/" + path) == "/"


def _from_flags(instruction: _Instruction) -> Iterator[str]:
    """`--from=X` of COPY/ADD and the `from=X` of each `RUN --mount=...`."""
    for word in instruction.rest.split():
        if not word.startswith("--"):
            break  # flags come first
        flag, _, value = word[2:].partition("=")
        if flag == "from" and instruction.keyword != "RUN":
            yield value
        elif flag == "mount" and instruction.keyword == "RUN":
            for field in value.split(","):
                key, _, setting = field.partition("=")
                if key.strip().lower() == "from" and setting:
                    yield setting.strip().strip("\"'")


def _instructions(text: str) -> Iterator[tuple[_Instruction, str]]:
    """Logical instructions with the escape character in force: parser directives read, comments and blank
    lines dropped (also inside continuations, as BuildKit does), continuations joined, heredoc bodies skipped."""
    lines = text.splitlines()
    escape = "\\"
    number = 0
    while number < len(lines):  # parser directives: only before anything else
        directive = _DIRECTIVE.match(lines[number])
        if not directive:
            break
        if directive.group(1).lower() == "escape" and directive.group(2) in ("\\", "`"):
            escape = directive.group(2)
        number += 1
    while number < len(lines):
        start, parts = number + 1, list[str]()
        while number < len(lines):
            line = lines[number]
            number += 1
            if not line.strip() or line.lstrip().startswith("#"):
                if parts:
                    continue
                break
            # BuildKit joins continuation lines as they are: nothing added, their indentation kept.
            line = line if parts else line.lstrip()
            stripped = line.rstrip(" \t")
            if stripped.endswith(escape):
                parts.append(stripped[: -len(escape)])
                continue
            parts.append(line)
            break
        logical = "".join(parts).strip()
        if not logical:
            continue
        keyword, _, rest = logical.partition(" ")
        keyword = keyword.upper()
        if keyword in {"RUN", "COPY", "ADD"}:
            for strip_tabs, _quote, word in _HEREDOC.findall(rest):
                while number < len(lines):
                    body = lines[number].lstrip("\t") if strip_tabs else lines[number]
                    number += 1
                    if body == word:
                        break
        yield _Instruction(start, keyword, rest.strip()), escape


def _split_words(text: str, escape: str) -> list[str]:
    """Split on whitespace outside quotes, keeping quotes and escapes for `_expand`."""
    words: list[str] = []
    current: list[str] = []
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if char == escape and index + 1 < len(text) and quote != "'":
            current.append(text[index : index + 2])
            index += 2
            continue
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char.isspace():
            if current:
                words.append("".join(current))
                current = []
            index += 1
            continue
        current.append(char)
        index += 1
    if current:
        words.append("".join(current))
    return words


def _expand(word: str, variables: Mapping[str, str], escape: str, where: int) -> str:
    """One word as BuildKit's shell lexer reads it: quotes removed, escapes applied, `$NAME`, `${NAME}`,
    `${NAME:-default}`, `${NAME-default}`, `${NAME:+other}` and `${NAME+other}` substituted (unset -> "")."""
    out: list[str] = []
    index = 0
    while index < len(word):
        char = word[index]
        if char == escape and index + 1 < len(word):
            out.append(word[index + 1])
            index += 2
        elif char == "'":
            end = word.find("'", index + 1)
            if end < 0:
                raise _DockerfileProblem(where, f"unterminated quote in {word!r}")
            out.append(word[index + 1 : end])
            index = end + 1
        elif char == '"':
            index += 1
            while True:
                if index >= len(word):
                    raise _DockerfileProblem(where, f"unterminated quote in {word!r}")
                char = word[index]
                if char == '"':
                    index += 1
                    break
                if char == escape and index + 1 < len(word) and word[index + 1] in ('"', "$", escape):
                    out.append(word[index + 1])
                    index += 2
                elif char == "$":
                    text, index = _variable(word, index, variables, escape, where)
                    out.append(text)
                else:
                    out.append(char)
                    index += 1
        elif char == "$":
            text, index = _variable(word, index, variables, escape, where)
            out.append(text)
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _variable(word: str, index: int, variables: Mapping[str, str], escape: str, where: int) -> tuple[str, int]:
    """The value of the variable reference at word[index] (a `$`), and the index after it."""
    following = word[index + 1 : index + 2]
    if following != "{":
        name = _NAME.match(word, index + 1)
        if not name:
            return "$", index + 1  # a lone `$` is literal
        return variables.get(name.group(), ""), name.end()
    name = _NAME.match(word, index + 2)
    if not name:
        raise _DockerfileProblem(where, f"bad variable reference in {word!r}")
    value = variables.get(name.group())
    position = name.end()
    if word[position : position + 1] == "}":
        return value or "", position + 1
    colon = word[position : position + 1] == ":"
    operator = word[position + colon : position + colon + 1]
    if operator not in ("-", "+"):
        raise _DockerfileProblem(where, f"unsupported variable substitution in {word!r} (bakegen reads ${{N}}, ${{N:-x}}, ${{N:+x}})")
    start = end = position + colon + 1
    depth = 1
    while end < len(word):
        if word[end] == escape:
            end += 2
            continue
        depth += {"{": 1, "}": -1}.get(word[end], 0)
        if depth == 0:
            break
        end += 1
    if depth:
        raise _DockerfileProblem(where, f"unterminated ${{ in {word!r}")
    is_set = value is not None and (bool(value) or not colon)
    inner = word[start:end]
    if operator == "-":
        result = value if is_set and value is not None else _expand(inner, variables, escape, where)
    else:
        result = _expand(inner, variables, escape, where) if is_set else ""
    return result, end + 1
