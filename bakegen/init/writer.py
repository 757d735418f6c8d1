"""`bakegen init`: the spec as data and as commented YAML, checked as `validate --strict` checks it."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bakegen import resources
from bakegen.dockerfile_check import dockerfile_problems
from bakegen.errors import Diagnostic
from bakegen.init.common import _PLAIN_SCALAR, _YAML_UNSAFE, IMAGE_VARIABLES, SCHEMA_URL, SourceDraft, SpecDraft
from bakegen.planner import build_plan
from bakegen.spec import Spec, SpecPath, format_path

# --- the spec as data, and as YAML -----------------------------------------------------------


def _args_entry(owner: str, pairs: tuple[tuple[str, str], ...], defaults: dict[str, str]) -> dict[str, Any]:
    """Args as the spec writes them; one whose default differs from the variable's gets its own variable."""
    args: dict[str, Any] = {}
    for arg, value in pairs:
        if defaults.setdefault(arg, value) == value:
            args[arg] = value
            continue
        prefix = re.sub(r"[^A-Za-z0-9]", "_", owner).upper()
        variable, n = f"{prefix}_{arg}", 2
        while defaults.setdefault(variable, value) != value:
            variable, n = f"{prefix}_{arg}_{n}", n + 1
        args[arg] = {"value": value, "variable": variable}
    return args


def _source_entry(variant: str, source: SourceDraft, defaults: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"dockerfile": source.dockerfile, "platforms": list(source.platforms)}
    args = _args_entry(f"{variant}_{source.name}", source.args, defaults)
    if args:
        entry["args"] = args
    if source.targets:
        entry["targets"] = dict(source.targets)
    return entry


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
        args = _args_entry(variant.name, variant.args, defaults)
        if args:
            entry["args"] = args
        if variant.labels:
            entry["labels"] = dict(variant.labels)
        if variant.sources:
            entry["platform-sources"] = {source.name: _source_entry(variant.name, source, defaults) for source in variant.sources}
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
