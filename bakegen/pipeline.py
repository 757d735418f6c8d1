"""The front of every command: load the spec, build the plan, check it against its Dockerfiles."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bakegen.dockerfile_check import dockerfile_problems
from bakegen.errors import BakegenError, Diagnostic
from bakegen.model import BuildPlan
from bakegen.planner import build_plan
from bakegen.spec import Spec, load_spec
from bakegen.validation import semantic_problems


@dataclass(frozen=True)
class Compiled:
    spec: Spec
    plan: BuildPlan
    warnings: tuple[Diagnostic, ...]


def compile_spec(path: str, *, strict: bool = False) -> Compiled:
    """Load, resolve and check a spec. Raises BakegenError with every error (and, with strict, every warning)."""
    spec = load_spec(path)
    plan, problems = build_plan(spec)
    problems = sorted(problems + semantic_problems(spec, plan), key=lambda d: (d.line, d.column)) + dockerfile_problems(spec, plan)
    errors = [p for p in problems if p.severity == "error" or strict]
    if errors:
        # Under --strict a warning fails the run, so it is printed as the error it has become.
        raise BakegenError([replace(p, severity="error") for p in errors])
    return Compiled(spec, plan, tuple(problems))
