"""`bakegen validate`: the schema, the plan's semantic checks and the Dockerfiles; exit 2 on errors."""

from __future__ import annotations

from bakegen.commands.common import SpecOptions, load
from bakegen.errors import EXIT_OK
from bakegen.spec import display_path


def run(spec: SpecOptions) -> int:
    compiled = load(spec)
    plan = compiled.plan
    warnings = len(compiled.warnings)
    print(
        f"{display_path(spec.path)}: ok, {len(plan.targets)} targets, {len(plan.groups)} groups"
        + (f", {warnings} warning(s)" if warnings else "")
    )
    return EXIT_OK
