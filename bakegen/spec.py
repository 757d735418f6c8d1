"""Load a spec: YAML with positions, validated against the JSON Schema.

The first stage of the pipeline. Everything after it can trust the shape of the data;
every problem found here is reported with FILE:LINE:COL and the path in the spec.

The spec is untrusted input (a CI job may point bakegen at any file), so loading is bounded
and never echoes a file that is not a spec:
- only a regular file of at most MAX_SPEC_BYTES is read; a FIFO, device or socket is refused
  after a stat, before it is opened, and the open is non-blocking;
- the YAML is composed from parser events without recursion, with at most MAX_NODES nodes
  and MAX_DEPTH levels of nesting; aliases are expanded into at most MAX_NODES values, so an
  alias bomb (billion laughs) stops early and in little memory; a recursive alias is an error;
- only plain data comes out: strings, numbers, booleans, null, lists and mappings. Any
  other tag (!foo, !!python/..., !!binary, !!timestamp, !!set) is an error at its position.
  An unquoted date (2024-01-01) stays the text as written: YAML 1.1 would make it a date,
  which no spec field can use, and YAML 1.2 has no such type; keeping the text is what the
  author meant (BUILD_DATE: 2024-01-01) and what other YAML 1.2 tools read;
- a YAML syntax error, a top level that is not a mapping, or a mapping with none of the
  spec's top-level keys is reported by position only, never quoting the file's content, so
  a credentials file given as the spec by mistake (or through a symlink) is never printed.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from bakegen import resources
from bakegen.cache import cache_key, remember, remembered
from bakegen.errors import BakegenError, Diagnostic, Severity, printable

DEFAULT_SPEC = "bakegen.yaml"

# A spec is a few KiB; the llama.cpp example, the largest, is under 10 KiB with fewer than
# 1,000 YAML nodes and 8 levels of nesting.
MAX_SPEC_BYTES = 1 << 20
MAX_NODES = 100_000
MAX_DEPTH = 64
# Longer than any number a spec holds; bounds int() (and YAML 1.1's base-60 ints, quadratic).
MAX_NUMBER_CHARS = 100

SpecPath = tuple[str | int, ...]
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_LIBYAML = _Loader is not yaml.SafeLoader

_YAML = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (f"{_YAML}{name}" for name in ("str", "int", "float", "bool", "null"))
_SEQ, _MAP, _MERGE, _TIMESTAMP, _VALUE = (f"{_YAML}{name}" for name in ("seq", "map", "merge", "timestamp", "value"))
# Tags a spec may write explicitly (!!str 12); every other tag is an error.
_EXPLICIT_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL, _SEQ, _MAP, _MERGE}
_SCALAR_CONSTRUCTORS: dict[str, Callable[[SafeConstructor, yaml.ScalarNode], Any]] = {
    _INT: SafeConstructor.construct_yaml_int,
    _FLOAT: SafeConstructor.construct_yaml_float,
    _BOOL: SafeConstructor.construct_yaml_bool,
    _NULL: SafeConstructor.construct_yaml_null,
}


@dataclass
class Spec:
    """A loaded, schema-valid spec and where each of its values stands in the file."""

    path: Path
    data: dict[str, Any]
    value_marks: dict[SpecPath, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[SpecPath, tuple[int, int]] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.path.parent

    def where(self, path: SpecPath, *, key: bool = False) -> tuple[int, int]:
        """Line and column of a value (or of its key); the nearest known ancestor otherwise."""
        marks = self.key_marks if key else self.value_marks
        if path in marks:
            return marks[path]
        while path:
            path = path[:-1]
            if path in self.value_marks:
                return self.value_marks[path]
        return (1, 1)

    def diagnostic(self, path: SpecPath, message: str, severity: Severity = "error", *, key: bool = False) -> Diagnostic:
        line, column = self.where(path, key=key)
        return Diagnostic(display_path(self.path), line, column, format_path(path), message, severity)


def format_path(path: SpecPath) -> str:
    """variants.cuda.platforms[1]; keys that are not plain names are quoted: labels["a.b"]."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.replace("_", "a").replace("-", "a").isalnum():
            out += f".{_shorten(part)}" if out else _shorten(part)
        else:
            out += f"[{json.dumps(_shorten(part), ensure_ascii=False)}]"
    return out


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as it can be printed: bytes that are not UTF-8 as \\xNN, control characters escaped.

    A path from the command line may hold any bytes (Python keeps them as surrogates, which
    cannot be encoded for printing), and a newline or an escape sequence in a file name must
    not forge or recolour the lines around it.
    """
    return printable(os.fsdecode(path))


def load_spec(path: str | Path) -> Spec:
    """Read, parse and schema-check a spec. Raises BakegenError with every problem found."""
    path = Path(path)
    shown = display_path(path)
    text = _read(path, shown)
    root = _Composer(shown).compose(text)
    if root is None:
        raise BakegenError([Diagnostic(shown, 1, 1, "", "the spec is empty (expected a mapping with version, image, stages, variants)")])
    builder = _Builder(shown)
    try:
        builder.require_spec_shape(root)
        data = builder.build(root, (), 0)
    except _Abort as abort:
        raise BakegenError([abort.diagnostic]) from None
    spec = Spec(path, data, builder.value_marks, builder.key_marks)
    problems = builder.problems + list(_schema_problems(spec, skip=builder.failed_paths))
    if problems:
        raise BakegenError(sorted(set(problems), key=lambda d: (d.line, d.column, d.path, d.message)))
    return spec


_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _read(path: Path, shown: str) -> str:
    def fail(message: str, line: int = 0, column: int = 0) -> BakegenError:
        return BakegenError([Diagnostic(shown, line, column, "", message)])

    # stat before open: opening a device can have effects, and a FIFO would block.
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise fail("no such file") from None
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror}") from None
    except ValueError:  # a NUL byte in the path
        raise fail("cannot read: the path contains a NUL byte") from None
    if stat.S_ISDIR(info.st_mode):
        raise fail(f"is a directory; expected a spec file such as {display_path(path / DEFAULT_SPEC)}")
    if not stat.S_ISREG(info.st_mode):
        kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        raise fail(f"is {kind}; a spec is read only from a regular file")
    limit = f"{MAX_SPEC_BYTES >> 20} MiB" if MAX_SPEC_BYTES % (1 << 20) == 0 else f"{MAX_SPEC_BYTES} bytes"
    too_big = fail(f"is larger than {limit}; a spec is a small text file")
    if info.st_size > MAX_SPEC_BYTES:
        raise too_big
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
        try:
            # The file may have been replaced since the stat: check what was opened.
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise fail("is not a regular file; a spec is read only from a regular file")
            raw = b""
            while len(raw) <= MAX_SPEC_BYTES:  # st_size can be 0 or wrong (/proc) or grow
                chunk = os.read(fd, MAX_SPEC_BYTES + 1 - len(raw))
                if not chunk:
                    break
                raw += chunk
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise fail("no such file") from None
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise too_big
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The byte itself is not shown: the file may not be a spec at all.
        line, column = _position_of_byte(raw, exc.start)
        raise fail("not valid UTF-8; save the spec as UTF-8", line, column) from None


def _position_of_byte(raw: bytes, offset: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    column = len(raw[line_start:offset].decode("utf-8", "replace")) + 1
    return raw.count(b"\n", 0, offset) + 1, column


class _Abort(Exception):
    """A problem after which nothing more can be read (syntax, size); carries its diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(str(diagnostic))
        self.diagnostic = diagnostic


@dataclass(frozen=True, slots=True, eq=False)
class _Node:
    """A composed YAML node: its resolved tag, whether the tag was written, and its position."""

    tag: str
    explicit: bool
    line: int
    column: int


@dataclass(frozen=True, slots=True, eq=False)
class _Scalar(_Node):
    text: str


@dataclass(frozen=True, slots=True, eq=False)
class _Sequence(_Node):
    items: list[_Node] = field(default_factory=list)


@dataclass(frozen=True, slots=True, eq=False)
class _Mapping(_Node):
    pairs: list[tuple[_Node, _Node]] = field(default_factory=list)


@dataclass(frozen=True, slots=True, eq=False)
class _Alias(_Node):
    """A use of an anchor (*name): where it is written, and the node it stands for."""

    target: _Node


def _deref(node: _Node) -> _Node:
    return node.target if isinstance(node, _Alias) else node


class _Composer:
    """YAML text to a graph of nodes, iteratively, from the parser's events.

    PyYAML's own composer recurses once per level (RecursionError at ~500 levels) and lets an
    anchor be used inside itself (a cyclic graph). This one bounds the depth and the number of
    nodes as it goes and rejects a recursive alias. Aliases stay shared nodes: expanding them
    is the builder's job, under its own budget.
    """

    def __init__(self, shown: str) -> None:
        self.shown = shown

    def compose(self, text: str) -> _Node | None:
        try:
            return self._compose(text)
        except _Abort as abort:
            raise BakegenError([abort.diagnostic]) from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
            problem = " ".join(filter(None, [exc.context, exc.problem]))
            raise BakegenError([Diagnostic(self.shown, line, column, "", f"YAML syntax error: {_without_content(problem)}")]) from None
        except yaml.reader.ReaderError as exc:
            line, column = _reader_error_position(text, exc.position)
            raise BakegenError([Diagnostic(self.shown, line, column, "", f"YAML error: {exc.reason}")]) from None
        except yaml.YAMLError:
            raise BakegenError([Diagnostic(self.shown, 0, 0, "", "YAML error: the file could not be parsed")]) from None

    def _compose(self, text: str) -> _Node | None:
        loader = _Loader(text)
        root: _Node | None = None
        anchors: dict[str, _Node] = {}
        # Each open collection with the nodes read into it so far (keys and values alternating).
        open_nodes: list[tuple[_Sequence | _Mapping, list[_Node]]] = []
        open_ids: set[int] = set()
        documents = nodes = 0

        def fail(line: int, column: int, message: str) -> _Abort:
            return _Abort(Diagnostic(self.shown, line, column, "", message))

        def add(node: _Node) -> None:
            nonlocal root, nodes
            nodes += 1
            if nodes > MAX_NODES:
                raise fail(node.line, node.column, f"more than {MAX_NODES} YAML nodes; a spec is much smaller")
            if len(open_nodes) > MAX_DEPTH:  # its depth: the collections around it
                raise fail(node.line, node.column, f"nested more than {MAX_DEPTH} levels deep; a spec is much flatter")
            if open_nodes:
                open_nodes[-1][1].append(node)
            else:
                root = node

        try:
            while True:
                event = loader.get_event()
                if event is None or isinstance(event, yaml.StreamEndEvent):
                    return root
                mark = event.start_mark
                line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
                if isinstance(event, yaml.DocumentStartEvent):
                    documents += 1
                    if documents > 1:
                        raise fail(line, column, "a second YAML document starts here; a spec is one document")
                elif isinstance(event, yaml.AliasEvent):
                    target = anchors.get(event.anchor or "")
                    if target is None:
                        raise fail(line, column, "alias to an anchor that is not defined before it")
                    if id(target) in open_ids:
                        raise fail(line, column, "recursive alias: an anchor is used inside its own value")
                    add(_Alias(target.tag, False, line, column, target))
                elif isinstance(event, yaml.ScalarEvent):
                    explicit = event.tag not in (None, "!")
                    tag = event.tag if explicit else loader.resolve(yaml.ScalarNode, event.value, event.implicit)
                    scalar = _Scalar(str(tag), explicit, line, column, event.value)
                    add(scalar)
                    if event.anchor is not None:
                        anchors[event.anchor] = scalar
                elif isinstance(event, yaml.CollectionStartEvent):
                    explicit = event.tag not in (None, "!")
                    collection: _Sequence | _Mapping
                    if isinstance(event, yaml.SequenceStartEvent):
                        tag = event.tag if explicit else loader.resolve(yaml.SequenceNode, None, event.implicit)
                        collection = _Sequence(str(tag), explicit, line, column)
                    else:
                        tag = event.tag if explicit else loader.resolve(yaml.MappingNode, None, event.implicit)
                        collection = _Mapping(str(tag), explicit, line, column)
                    add(collection)
                    if event.anchor is not None:
                        anchors[event.anchor] = collection
                    open_nodes.append((collection, []))
                    open_ids.add(id(collection))
                elif isinstance(event, yaml.CollectionEndEvent):
                    collection, items = open_nodes.pop()
                    open_ids.discard(id(collection))
                    if isinstance(collection, _Mapping):
                        collection.pairs.extend(zip(items[0::2], items[1::2], strict=True))
                    else:
                        collection.items.extend(items)
        finally:
            loader.dispose()


def _reader_error_position(text: str, offset: int) -> tuple[int, int]:
    # libyaml reads the text as UTF-8 and reports a byte offset; PyYAML a character offset.
    if _LIBYAML:
        return _position_of_byte(text.encode("utf-8", "surrogatepass"), offset)
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


_QUOTED = re.compile(r""" ?('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
# What PyYAML quotes that is YAML's syntax, not the file's text: an indicator, or a token name.
_SYNTAX = re.compile(r"""['"](?:[-\[\]{}:,?|>!&*%@`#]|<[a-z ]+>)['"]""")


def _without_content(problem: str) -> str:
    """A YAML error message without the text of the file that PyYAML quotes.

    libyaml's messages are fixed text; pure-Python PyYAML quotes what it stopped at
    ("found character '\\t' that cannot start any token"), which may be part of a secret.
    """
    return _QUOTED.sub(lambda m: m[0] if _SYNTAX.fullmatch(m[1]) else "", problem)


class _Builder:
    """Turns composed YAML nodes into plain data, remembering each node's position.

    Mapping keys are taken as written (so `on:` stays the string "on"), and duplicate
    keys are errors instead of PyYAML's silent last-one-wins. Aliases are expanded here,
    counting every value (and every merged key looked at) against MAX_NODES.
    """

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.value_marks: dict[SpecPath, tuple[int, int]] = {}
        self.key_marks: dict[SpecPath, tuple[int, int]] = {}
        self.problems: list[Diagnostic] = []
        # Values that could not be built (a bad tag, a number too large): the schema is not
        # asked about them, so each problem is reported once.
        self.failed_paths: set[SpecPath] = set()
        self._constructor = SafeConstructor()
        self._work = 0
        self._expanding: _Alias | None = None

    def require_spec_shape(self, root: _Node) -> None:
        """A mapping with at least one of the spec's top-level keys, or an error that quotes nothing."""
        if not isinstance(root, _Mapping):
            what = "a list" if isinstance(root, _Sequence) else "a single value"
            problem = f"the top level of the spec is {what}; expected a mapping with version, image, stages, variants"
        elif not any(isinstance(key := _deref(k), _Scalar) and key.text in _top_level_keys() for k, _ in self._pairs(root, ())):
            problem = "not a bakegen spec: none of its top-level keys is one of version, image, stages, variants"
        else:
            return
        raise _Abort(Diagnostic(self.shown, root.line, root.column, "", problem))

    def build(self, node: _Node, path: SpecPath, depth: int) -> Any:
        self._count(node)
        if depth > MAX_DEPTH:
            raise self._abort(node, f"nested more than {MAX_DEPTH} levels deep (after expanding aliases); a spec is much flatter")
        self.value_marks[path] = (node.line, node.column)
        if isinstance(node, _Alias):
            if self._expanding is not None:
                return self._build_value(node.target, path, depth)
            # The outermost alias being expanded is where a size error points: the bomb's fuse.
            self._expanding = node
            try:
                return self._build_value(node.target, path, depth)
            finally:
                self._expanding = None
        return self._build_value(node, path, depth)

    def _build_value(self, node: _Node, path: SpecPath, depth: int) -> Any:
        if isinstance(node, _Mapping):
            if node.tag != _MAP:
                return self._fail(node, path, _unsupported_tag(node.tag), {})
            result: dict[str, Any] = {}
            for key_written, value_node in self._pairs(node, path):
                line, column = key_written.line, key_written.column
                key_node = _deref(key_written)
                if not isinstance(key_node, _Scalar):
                    self.problems.append(Diagnostic(self.shown, line, column, format_path(path), "keys must be plain strings"))
                    continue
                key = key_node.text
                child: SpecPath = (*path, key)
                if key_node.explicit and key_node.tag not in _EXPLICIT_TAGS:
                    self.problems.append(Diagnostic(self.shown, line, column, format_path(child), _unsupported_tag(key_node.tag)))
                    continue
                if key in result:
                    first = self.key_marks[child][0]
                    self.problems.append(
                        Diagnostic(self.shown, line, column, format_path(child), f"duplicate key (first defined on line {first})")
                    )
                    continue
                self.key_marks[child] = (line, column)
                result[key] = self.build(value_node, child, depth + 1)
            return result
        if isinstance(node, _Sequence):
            if node.tag != _SEQ:
                return self._fail(node, path, _unsupported_tag(node.tag), [])
            return [self.build(item, (*path, index), depth + 1) for index, item in enumerate(node.items)]
        assert isinstance(node, _Scalar)
        return self._scalar(node, path)

    def _scalar(self, node: _Scalar, path: SpecPath) -> Any:
        tag, text = node.tag, node.text
        if tag in (_STR, _MERGE, _VALUE):  # `<<` and `=` as values are text (PyYAML has no constructor for them)
            return text
        if tag == _TIMESTAMP and not node.explicit:
            return text  # see the module docstring: an unquoted date stays as written
        constructor = _SCALAR_CONSTRUCTORS.get(tag)
        if constructor is None:
            return self._fail(node, path, _unsupported_tag(tag), text)
        name = tag.removeprefix(_YAML)
        if tag in (_INT, _FLOAT) and len(text) > MAX_NUMBER_CHARS:
            return self._fail(node, path, f"a number longer than {MAX_NUMBER_CHARS} characters; quote it if it is text", text)
        try:
            value = constructor(self._constructor, yaml.ScalarNode(tag, text))
        except (ValueError, KeyError, TypeError, OverflowError, yaml.YAMLError):
            return self._fail(node, path, f"not a valid !!{name} value", text)
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 63:
            return self._fail(node, path, "integer too large (more than 64 bits); quote it if it is text", text)
        return value

    def _pairs(self, node: _Mapping, path: SpecPath) -> Iterator[tuple[_Node, _Node]]:
        """Mapping pairs with YAML merge keys (<<: *defaults) expanded, explicit keys winning.

        PyYAML's order: the mapping's own pairs, then each merged mapping's (its own, then
        what it merges in turn), the first of a list `<<: [*a, *b]` winning. A pre-order walk
        with a stack, so a long chain of merges cannot exhaust Python's stack.
        """
        yield from ((k, v) for k, v in node.pairs if _deref(k).tag != _MERGE)
        written = {key.text for key in (_deref(k) for k, _ in node.pairs) if isinstance(key, _Scalar) and key.tag != _MERGE}
        # A size error while merging points at this mapping's first `<<`.
        fuse = next((k for k, _ in node.pairs if _deref(k).tag == _MERGE), None)
        if fuse is None:
            return
        pending = list(reversed(self._merge_sources(node, path, fuse)))
        while pending:
            source = pending.pop()
            for key_written, value_node in source.pairs:
                self._count(key_written, fuse)
                key_node = _deref(key_written)
                if key_node.tag == _MERGE:
                    continue
                if isinstance(key_node, _Scalar) and key_node.text not in written:
                    written.add(key_node.text)
                    yield key_written, value_node
            pending.extend(reversed(self._merge_sources(source, path, fuse)))

    def _merge_sources(self, node: _Mapping, path: SpecPath, fuse: _Node) -> list[_Mapping]:
        sources: list[_Mapping] = []
        for key_node, value_node in node.pairs:
            if _deref(key_node).tag != _MERGE:
                continue
            merged = _deref(value_node)
            candidates = merged.items if isinstance(merged, _Sequence) else [value_node]
            for candidate in candidates:
                self._count(candidate, fuse)
                source = _deref(candidate)
                if isinstance(source, _Mapping):
                    sources.append(source)
                else:
                    line, column = candidate.line, candidate.column
                    message = "<< (merge key) takes a mapping or a list of mappings, such as <<: *defaults"
                    self.problems.append(Diagnostic(self.shown, line, column, format_path(path), message))
        return sources

    def _count(self, node: _Node, fuse: _Node | None = None) -> None:
        self._work += 1
        if self._work > MAX_NODES:
            raise self._abort(fuse or node, f"more than {MAX_NODES} values after expanding aliases; a spec is much smaller")

    def _fail(self, node: _Node, path: SpecPath, message: str, placeholder: Any) -> Any:
        self.problems.append(Diagnostic(self.shown, node.line, node.column, format_path(path), message))
        self.failed_paths.add(path)
        return placeholder

    def _abort(self, node: _Node, message: str) -> _Abort:
        node = self._expanding or node
        return _Abort(Diagnostic(self.shown, node.line, node.column, "", message))


def _unsupported_tag(tag: str) -> str:
    shown = "!!" + tag.removeprefix(_YAML) if tag.startswith(_YAML) else tag
    hint = (
        "write the value as a quoted string"
        if tag in (f"{_YAML}binary", _TIMESTAMP)
        else "a spec holds only text, numbers, booleans, null, lists and mappings"
    )
    return f"unsupported YAML tag {_shorten(printable(shown))}; {hint}"


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@cache
def _top_level_keys() -> frozenset[str]:
    schema = json.loads(resources.read_text("bakegen.schema.json"))
    return frozenset(schema["properties"])


@cache
def _validator() -> Any:
    # Imported here: jsonschema is the heaviest import on the render path; only loading a
    # spec needs it, and this keeps `bakegen --help` fast.
    from jsonschema import Draft202012Validator

    schema = json.loads(resources.read_text("bakegen.schema.json"))
    return Draft202012Validator(schema)


def _schema_problems(spec: Spec, skip: set[SpecPath]) -> Iterator[Diagnostic]:
    # A schema check is a pure function of (schema, data). Importing jsonschema costs more
    # than the rest of `render` together, so a data set known to be valid skips it.
    # Only successes are remembered; a change to bakegen, the schema or the data misses.
    # The key is the data, not the file's bytes: editing a comment keeps the entry.
    key = cache_key("schema-valid", resources.read_text("bakegen.schema.json"), json.dumps(spec.data, sort_keys=True))
    if remembered("schema-valid", key):
        return
    found = False
    for path, problem in _validation_errors(spec):
        # Counted even when not shown: a value that could not be read (`version: !!int one`)
        # leaves its text in the data, and the same data written plainly must fail again.
        found = True
        if not any(path[: len(failed)] == failed for failed in skip):  # else already reported
            yield problem
    if not found:
        remember("schema-valid", key)


def _validation_errors(spec: Spec) -> Iterator[tuple[SpecPath, Diagnostic]]:
    from jsonschema.exceptions import best_match

    for error in _validator().iter_errors(spec.data):
        while error.validator in ("oneOf", "anyOf") and error.context:
            error = best_match(error.context)
        path: SpecPath = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = sorted(error.schema.get("properties", {}))
            for extra in sorted(set(error.instance) - set(known)):
                expected = f"; expected one of: {', '.join(known)}" if known else ""
                yield path, spec.diagnostic((*path, extra), f"unknown key {_short_repr(extra)}{expected}", key=True)
            continue
        yield path, spec.diagnostic(path, _message(error))


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:76] + "...'"


def _one_of_required_keys(alternatives: Any) -> list[str]:
    """The keys of a `oneOf` whose alternatives each only require one key (a check's kinds), else []."""
    keys: list[str] = []
    for option in alternatives:
        required = option.get("required") if isinstance(option, dict) and set(option) == {"required"} else None
        if not (isinstance(required, list) and len(required) == 1 and isinstance(required[0], str)):
            return []
        keys.append(required[0])
    return keys


def _message(error: Any) -> str:
    instance = error.instance
    is_number = isinstance(instance, (int, float)) and not isinstance(instance, bool)
    if error.validator == "type" and is_number and "string" in error.validator_value:
        return f'expected a string, got the number {instance!r}; quote it: "{instance}"'
    if error.validator == "pattern":
        what = error.schema.get("description", f"a string matching {error.validator_value}")
        return f"{_short_repr(instance)} is not valid here; expected {what[0].lower() + what[1:]}"
    if error.validator == "const":
        return f"expected {error.validator_value!r}, got {_short_repr(instance)}"
    if error.validator == "minProperties" and not instance:
        return "must not be empty"
    if error.validator == "minItems" and not instance:
        return "must not be empty"
    if error.validator == "oneOf" and isinstance(instance, dict):
        kinds = _one_of_required_keys(error.validator_value)
        given = [kind for kind in kinds if kind in instance]
        if kinds and len(given) > 1:
            named = f"{', '.join(given[:-1])} and {given[-1]}"
            return f"{len(given)} kinds of check, {named}; a check has exactly one of {', '.join(kinds)}"
    message: str = error.message
    return message if len(message) <= 200 else message[:197] + "..."
