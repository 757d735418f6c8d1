"""Templates: literal text and references to bake variables, resolved at bake time.

A tag such as `{stage}{suffix}-{VERSION}` becomes `(Var(REPO), Text(":light-cuda-"), Var(VERSION))`:
the planner fills in what it knows (stage, variant, suffix) and keeps the rest as variables,
which render writes as `${VERSION}` and bake resolves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Text:
    """Literal text of a template."""

    value: str


@dataclass(frozen=True)
class Var:
    """A reference to a bake variable, resolved at bake time."""

    name: str


Part = Text | Var
Template = tuple[Part, ...]


def template_variables(template: Template) -> list[str]:
    """The variables a template uses, in order, each once."""
    return list(dict.fromkeys(part.name for part in template if isinstance(part, Var)))


def resolve(template: Template, values: Mapping[str, str]) -> str:
    return "".join(part.value if isinstance(part, Text) else values[part.name] for part in template)


def joined(parts: Iterable[Part]) -> Template:
    """Merge neighbouring Text parts and drop empty ones, so equal templates compare equal."""
    out: list[Part] = []
    for part in parts:
        if isinstance(part, Text):
            if not part.value:
                continue
            if out and isinstance(out[-1], Text):
                out[-1] = Text(out[-1].value + part.value)
                continue
        out.append(part)
    return tuple(out)


def shown(template: Template) -> str:
    """A template as the user wrote it: variables as {NAME}."""
    return "".join(part.value if isinstance(part, Text) else "{" + part.name + "}" for part in template)
