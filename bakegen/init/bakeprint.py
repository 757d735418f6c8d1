"""`bakegen init --from-bake`: the bake file as `docker buildx bake --print` resolves it, and the report of
what bakegen does not carry over."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bakegen.errors import BakegenError, Diagnostic

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
