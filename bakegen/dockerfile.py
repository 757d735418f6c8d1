"""Just enough Dockerfile parsing to check a spec against it: stages, their ARGs, and which stages each one uses.

Reads lines the way BuildKit's parser does (frontend/dockerfile/parser): parser directives only at the very top,
comment and blank lines skipped inside a continuation, heredoc bodies skipped. ARG scope follows BuildKit too:
ARGs before the first FROM are global, an ARG in a stage reaches only builds that need that stage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bakegen.errors import BakegenError, Diagnostic

# Real Dockerfiles are a few kilobytes; the cap only keeps a wrong path (an image, a log) from filling memory.
MAX_BYTES = 1024 * 1024

# ARGs BuildKit knows without an ARG line (Dockerfile reference: "Predefined ARGs", "Automatic platform ARGs in the
# global scope", "BuildKit built-in build args"). Proxy names are matched in any case, as BuildKit does.
_PROXY_ARGS = frozenset({"http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy"})
_AUTOMATIC_ARGS = frozenset(
    {
        *(f"{side}{part}" for side in ("TARGET", "BUILD") for part in ("PLATFORM", "OS", "OSVERSION", "ARCH", "VARIANT")),
        "TARGETSTAGE",
        "SOURCE_DATE_EPOCH",
    }
)
_DIRECTIVE = re.compile(r"#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"(\d*)<<(-?)([^<]*)")
_WORD = re.compile(r"""(?:[^\s"']|"[^"]*"|'[^']*')+""")  # a shell-like word, quotes kept
_INDEX = re.compile(r"[0-9]{1,9}")  # str.isdigit() also accepts "²", which int() rejects
_FLAG = re.compile(r"\s*(--\S+)")
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


def is_predefined(arg: str) -> bool:
    """True for build args BuildKit consumes although no ARG line declares them."""
    return arg.lower() in _PROXY_ARGS or arg.startswith("BUILDKIT_") or arg in _AUTOMATIC_ARGS


@dataclass(frozen=True)
class Stage:
    name: str  # lowercase; "" when the FROM line has no AS
    base: str  # the FROM image or stage name, global ARG defaults substituted
    args: frozenset[str] = frozenset()
    copies_from: tuple[str, ...] = ()  # COPY --from= and RUN --mount=...,from= values: stage names, indexes or images


@dataclass(frozen=True)
class DockerfileInfo:
    global_args: frozenset[str]  # declared before the first FROM
    all_stages: tuple[Stage, ...]  # in file order, named or not (COPY --from=<index> counts them all)

    @property
    def stages(self) -> tuple[str, ...]:
        """Stage names (lowercase), in file order."""
        return tuple(stage.name for stage in self.all_stages if stage.name)

    @property
    def args(self) -> frozenset[str]:
        """Every ARG declared anywhere, whatever its scope."""
        return self.global_args.union(*(stage.args for stage in self.all_stages))

    def dependencies(self, stage: str) -> tuple[str, ...]:
        """Names of the stages a build of `stage` also builds (itself included; unnamed ones as their index)."""
        return tuple(self.all_stages[i].name or str(i) for i in sorted(self._needed(stage)))

    def args_reaching(self, stage: str) -> frozenset[str]:
        """ARGs a build of `stage` consumes: global ones, its own and those of every stage it needs."""
        return self.global_args.union(*(self.all_stages[i].args for i in self._needed(stage)))

    def declares(self, stage: str, arg: str) -> bool:
        """Whether a build arg `arg` has an effect on a build of `stage`."""
        return is_predefined(arg) or arg in self.args_reaching(stage)

    def _needed(self, stage: str) -> set[int]:
        by_name: dict[str, int] = {}
        for i, candidate in enumerate(self.all_stages):
            by_name.setdefault(candidate.name, i)  # BuildKit rejects a repeated name; the first one wins here

        def find(ref: str, by_index: bool) -> int | None:
            # FROM takes only names; COPY --from and --mount from= also take a stage's position.
            if ref and ref.lower() in by_name:
                return by_name[ref.lower()]
            if by_index and _INDEX.fullmatch(ref) and int(ref) < len(self.all_stages):
                return int(ref)
            return None

        start = find(stage, by_index=False)
        needed: set[int] = set()
        todo: list[int] = [] if start is None else [start]
        while todo:
            i = todo.pop()
            if i in needed:
                continue  # also ends dependency cycles, which BuildKit rejects
            needed.add(i)
            current = self.all_stages[i]
            refs = [(current.base, False), *((ref, True) for ref in current.copies_from)]
            todo.extend(j for ref, by_index in refs if (j := find(ref, by_index)) is not None)
        return needed


def parse_dockerfile(path: Path) -> DockerfileInfo:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES)
    except OSError as error:
        raise BakegenError([Diagnostic(str(path), 0, 0, "", f"cannot read the Dockerfile: {error.strerror or error}")]) from None
    return parse_dockerfile_text(data.decode("utf-8", errors="replace"))


def parse_dockerfile_text(text: str) -> DockerfileInfo:
    global_defaults: dict[str, str] = {}
    heads: list[tuple[str, str]] = []  # (name, base) of each FROM
    stage_args: list[set[str]] = []
    stage_refs: list[list[str]] = []
    for keyword, flags, rest in _instructions(text[:MAX_BYTES]):
        if keyword == "FROM":
            words = rest.split()
            name = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else ""
            heads.append((name, _substitute(words[0], global_defaults) if words else ""))
            stage_args.append(set())
            stage_refs.append([])
        elif keyword == "ARG":
            declared = dict(_name_and_default(word) for word in _WORD.findall(rest))
            declared.pop("", None)
            if heads:
                stage_args[-1].update(declared)
            else:
                global_defaults.update(declared)
        elif keyword in ("COPY", "RUN") and heads:
            stage_refs[-1].extend(ref for flag in flags for ref in _stage_refs(flag))
    stages = (
        Stage(name, base, frozenset(args), tuple(refs)) for (name, base), args, refs in zip(heads, stage_args, stage_refs, strict=True)
    )
    return DockerfileInfo(frozenset(global_defaults), tuple(stages))


def _instructions(text: str) -> list[tuple[str, list[str], str]]:
    """(KEYWORD, leading --flags, rest) per instruction, line handling as in BuildKit's parser.Parse."""
    lines = text.removeprefix("\ufeff").split("\n")
    escape = _escape_directive(lines)
    out: list[tuple[str, list[str], str]] = []
    i = 0
    while i < len(lines):
        line, more = _continued(lines[i].lstrip(), escape)
        i += 1
        if line.lstrip().startswith("#") or (not more and not line.strip()):
            continue
        while more and i < len(lines):
            raw = lines[i]
            i += 1
            if raw.strip() and not raw.lstrip().startswith("#"):  # comment and blank lines do not end an instruction
                part, more = _continued(raw, escape)
                line += part
        keyword, rest = _first_word(line)
        flags, rest = _split_flags(rest)
        out.append((keyword.upper(), flags, rest))
        for name, chomp in _heredocs(keyword, rest, line):
            while i < len(lines) and (lines[i].rstrip("\r").lstrip("\t") if chomp else lines[i].rstrip("\r")) != name:
                i += 1
            i += 1  # the terminator; an unterminated heredoc (a BuildKit error) takes the rest of the file
    return out


def _escape_directive(lines: list[str]) -> str:
    """The `# escape=` character; directives count only in the comment lines that open the file."""
    for line in lines:
        match = _DIRECTIVE.match(line.strip())
        if not match or match[1].lower() not in ("syntax", "escape", "check"):
            break
        if match[1].lower() == "escape" and match[2] in ("\\", "`"):
            return match[2]
    return "\\"


def _continued(line: str, escape: str) -> tuple[str, bool]:
    """The line without its continuation character, and whether the instruction continues on the next line."""
    line = line.rstrip("\r")
    body = line.rstrip(" \t")
    if body.endswith(escape) and not body.endswith(escape * 2):
        return body[:-1], True
    return line, False


def _first_word(text: str) -> tuple[str, str]:
    words = text.split(None, 1)
    return words[0] if words else "", words[1] if len(words) > 1 else ""


def _split_flags(rest: str) -> tuple[list[str], str]:
    """Leading --name=value words (BuildKit's builder flags), and what follows them."""
    flags: list[str] = []
    position = 0
    while (match := _FLAG.match(rest, position)) is not None:
        flags.append(match[1])
        position = match.end()
    return flags, rest[position:].strip()


def _heredocs(keyword: str, rest: str, line: str) -> list[tuple[str, bool]]:
    """(terminator, strip leading tabs) for each heredoc a RUN, COPY or ADD line opens, in order."""
    if keyword.upper() == "ONBUILD":
        keyword, rest = _first_word(rest)
        rest = _split_flags(rest)[1]
    if keyword.upper() not in ("RUN", "COPY", "ADD") or "<<" not in rest:
        return []
    found: list[tuple[str, bool]] = []
    # Words keep their quotes, so the quoted words of a JSON-form RUN ["sh", "-c", "x <<EOF"] never match.
    for word in _WORD.findall(line):
        match = _HEREDOC.fullmatch(word)
        if match is not None and _unquote(match[3]):
            found.append((_unquote(match[3]), match[2] == "-"))
    return found


def _stage_refs(flag: str) -> list[str]:
    """Stages a COPY/RUN flag reads from: --from=<ref>, or --mount=...,from=<ref>,..."""
    if flag.startswith("--from="):
        return [_unquote(flag[len("--from=") :])]
    if flag.startswith("--mount="):
        fields = (field.partition("=") for field in flag[len("--mount=") :].split(","))
        return [_unquote(value) for key, _, value in fields if key.strip().lower() == "from"]
    return []


def _name_and_default(word: str) -> tuple[str, str]:
    name, _, default = word.partition("=")
    return _unquote(name), _unquote(default)


def _substitute(word: str, defaults: dict[str, str]) -> str:
    """$NAME, ${NAME} and ${NAME:-word} with the global ARGs' defaults, as FROM sees them when no build arg is passed."""
    return _VARIABLE.sub(lambda m: defaults.get(m[1] or m[3]) or (m[2] or ""), word)


def _unquote(text: str) -> str:
    return text.replace('"', "").replace("'", "")
