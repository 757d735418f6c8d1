from __future__ import annotations

import argparse
import json

from bakegen.errors import EXIT_OK
from bakegen.model import BuildPlan, resolve
from bakegen.pipeline import compile_spec
from bakegen.render import bake_print
from bakegen.tables import format_table


def run(args: argparse.Namespace) -> int:
    plan = compile_spec(args.file, strict=args.strict).plan
    values = plan.values(dict(args.var))
    if args.json:
        print(json.dumps(bake_print(plan, values, args.names), indent=2, ensure_ascii=False))
        return EXIT_OK
    print(plan_table(plan, values, args.names))
    return EXIT_OK


def plan_table(plan: BuildPlan, values: dict[str, str], names: list[str]) -> str:
    rows = [("TARGET", "DOCKERFILE", "STAGE", "PLATFORMS", "TAGS", "ARGS")]
    for target in plan.select(names):
        tags = " ".join(t.rsplit(":", 1)[-1] for t in plan.resolved_tags(target, values))
        args = " ".join(f"{name}={resolve(v, values)}" for name, v in target.args)
        rows.append((target.name, target.dockerfile, target.stage, ",".join(target.platforms), tags, args))
    lines = format_table(rows).splitlines()
    lines.append(
        f"\nrepository: {values[plan.repository_variable]}   variables: "
        + ", ".join(f"{v.name}={values[v.name]!r}" for v in plan.variables if v.name != plan.repository_variable)
    )
    return "\n".join(line.rstrip() for line in lines)
