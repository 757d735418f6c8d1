"""The front of every command: load the spec, build the plan, check it; warnings printed once."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from bakegen.checks import check_dockerfiles
from bakegen.errors import BakegenError, Diagnostic
from bakegen.model import BuildPlan, build_plan
from bakegen.spec import Spec, load_spec


@dataclass(frozen=True)
class Compiled:
    spec: Spec
    plan: BuildPlan
    warnings: list[Diagnostic]


def compile_spec(path: str, *, strict: bool = False, quiet: bool = False) -> Compiled:
    """Load, resolve and check a spec. Raises BakegenError on errors (and on warnings with strict)."""
    spec = load_spec(path)
    plan, problems = build_plan(spec)
    problems = sorted(problems, key=lambda d: (d.line, d.column)) + check_dockerfiles(spec, plan)
    errors = [p for p in problems if p.severity == "error" or strict]
    if errors:
        raise BakegenError(errors)
    if not quiet:
        for warning in problems:
            print(warning, file=sys.stderr)
    return Compiled(spec, plan, problems)
