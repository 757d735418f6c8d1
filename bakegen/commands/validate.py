from __future__ import annotations

import argparse

from bakegen.errors import EXIT_OK
from bakegen.pipeline import compile_spec


def run(args: argparse.Namespace) -> int:
    compiled = compile_spec(args.file, strict=args.strict)
    plan = compiled.plan
    warnings = len(compiled.warnings)
    print(f"{args.file}: ok, {len(plan.targets)} targets, {len(plan.groups)} groups" + (f", {warnings} warning(s)" if warnings else ""))
    return EXIT_OK
