"""Load a spec: YAML with positions, validated against the JSON Schema.

The first stage of the pipeline. Everything after it can trust the shape of the data;
every problem found here is reported with FILE:LINE:COL and the path in the spec.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bakegen import resources
from bakegen.cache import remember, remembered
from bakegen.errors import BakegenError, Diagnostic, Severity

DEFAULT_SPEC = "bakegen.yaml"

SpecPath = tuple[str | int, ...]
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
        return Diagnostic(str(self.path), line, column, format_path(path), message, severity)


def format_path(path: SpecPath) -> str:
    """variants.cuda.platforms[1]; keys that are not plain names are quoted: labels["a.b"]."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.replace("_", "a").replace("-", "a").isalnum():
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def load_spec(path: str | Path) -> Spec:
    """Read, parse and schema-check a spec. Raises BakegenError with every problem found."""
    path = Path(path)
    text = _read(path)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = " ".join(filter(None, [exc.context, exc.problem]))
        raise BakegenError([Diagnostic(str(path), line, column, "", f"YAML syntax error: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise BakegenError([Diagnostic(str(path), 0, 0, "", f"YAML error: {exc}")]) from None
    if root is None:
        raise BakegenError(
            [Diagnostic(str(path), 1, 1, "", "the spec is empty (expected a mapping with version, image, stages, variants)")]
        )

    builder = _Builder(path)
    data = builder.build(root, ())
    spec = Spec(path, data, builder.value_marks, builder.key_marks)
    problems = builder.problems + list(_schema_problems(spec))
    if problems:
        raise BakegenError(sorted(problems, key=lambda d: (d.line, d.column)))
    return spec


def _read(path: Path) -> str:
    if path.is_dir():
        raise BakegenError([Diagnostic(str(path), 0, 0, "", f"is a directory; expected a spec file such as {path / DEFAULT_SPEC}")])
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BakegenError([Diagnostic(str(path), 0, 0, "", "no such file")]) from None
    except OSError as exc:
        raise BakegenError([Diagnostic(str(path), 0, 0, "", f"cannot read: {exc.strerror}")]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise BakegenError(
            [Diagnostic(str(path), line, column, "", f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the spec as UTF-8")]
        ) from None


class _Builder:
    """Turns composed YAML nodes into plain data, remembering each node's position.

    Mapping keys are taken as written (so `on:` stays the string "on"), and duplicate
    keys are errors instead of PyYAML's silent last-one-wins.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.value_marks: dict[SpecPath, tuple[int, int]] = {}
        self.key_marks: dict[SpecPath, tuple[int, int]] = {}
        self.problems: list[Diagnostic] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: SpecPath) -> Any:
        self.value_marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in self._pairs(node):
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
                line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                if key is None:
                    self.problems.append(Diagnostic(str(self.path), line, column, format_path(path), "keys must be plain strings"))
                    continue
                child: SpecPath = (*path, key)
                if key in result:
                    first = self.key_marks[child][0]
                    self.problems.append(
                        Diagnostic(
                            str(self.path), line, column, format_path((*path, key)), f"duplicate key (first defined on line {first})"
                        )
                    )
                    continue
                self.key_marks[child] = (line, column)
                result[key] = self.build(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        return self._constructor.construct_object(node)

    def _pairs(self, node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        """Mapping pairs with YAML merge keys (<<: *defaults) expanded, explicit keys winning."""
        explicit = [(k, v) for k, v in node.value if k.tag != "tag:yaml.org,2002:merge"]
        written = {k.value for k, _ in explicit if isinstance(k, yaml.ScalarNode)}
        yield from explicit
        for key_node, value_node in node.value:
            if key_node.tag != "tag:yaml.org,2002:merge":
                continue
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    for k, v in source.value:
                        if isinstance(k, yaml.ScalarNode) and k.value not in written:
                            written.add(k.value)
                            yield k, v


@cache
def _validator() -> Any:
    # Imported here: jsonschema is the heaviest import on the render path; only loading a
    # spec needs it, and this keeps `bakegen --help` fast.
    from jsonschema import Draft202012Validator

    schema = json.loads(resources.read_text("bakegen.schema.json"))
    return Draft202012Validator(schema)


def _schema_problems(spec: Spec) -> Iterator[Diagnostic]:
    # A schema check is a pure function of (schema, data). Importing jsonschema costs more
    # than the rest of `render` together, so a data set known to be valid skips it.
    # Only successes are remembered; any change to the schema or the spec misses.
    key = hashlib.sha256((resources.read_text("bakegen.schema.json") + json.dumps(spec.data, sort_keys=True)).encode()).hexdigest()
    if remembered("schema-valid", key):
        return
    found = False
    for problem in _validation_errors(spec):
        found = True
        yield problem
    if not found:
        remember("schema-valid", key)


def _validation_errors(spec: Spec) -> Iterator[Diagnostic]:
    from jsonschema.exceptions import best_match

    for error in _validator().iter_errors(spec.data):
        while error.validator in ("oneOf", "anyOf") and error.context:
            error = best_match(error.context)
        path: SpecPath = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = sorted(error.schema.get("properties", {}))
            for extra in sorted(set(error.instance) - set(known)):
                expected = f"; expected one of: {', '.join(known)}" if known else ""
                yield spec.diagnostic((*path, extra), f"unknown key {extra!r}{expected}", key=True)
            continue
        yield spec.diagnostic(path, _message(error))


def _message(error: Any) -> str:
    instance = error.instance
    is_number = isinstance(instance, (int, float)) and not isinstance(instance, bool)
    if error.validator == "type" and is_number and "string" in error.validator_value:
        return f'expected a string, got the number {instance!r}; quote it: "{instance}"'
    if error.validator == "pattern":
        what = error.schema.get("description", f"a string matching {error.validator_value}")
        return f"{instance!r} is not valid here; expected {what[0].lower() + what[1:]}"
    if error.validator == "const":
        return f"expected {error.validator_value!r}, got {instance!r}"
    if error.validator == "minProperties" and not instance:
        return "must not be empty"
    if error.validator == "minItems" and not instance:
        return "must not be empty"
    message: str = error.message
    return message if len(message) <= 200 else message[:197] + "..."
