"""`bakegen merge`: publish multi-platform tags from per-platform images.

After each platform was built and pushed as TAG-ARCH (`bakegen bake --push --platform P
--platform-tags`, one CI runner per platform), this creates every final tag of each
target as one manifest list with `docker buildx imagetools create`.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from bakegen import model
from bakegen.errors import EXIT_FAILED, EXIT_OK
from bakegen.model import BuildPlan, resolve
from bakegen.pipeline import compile_spec
from bakegen.runners import buildx
from bakegen.tables import format_table


def run(args: argparse.Namespace) -> int:
    compiled = compile_spec(args.file, strict=args.strict)
    plan = model.only(compiled.plan, compiled.plan.select(args.names))
    return merge_plan(plan, plan.values(dict(args.var)), builder=args.builder, dry_run=args.dry_run)


def merge_plan(plan: BuildPlan, values: dict[str, str], *, builder: str | None, dry_run: bool) -> int:
    rows = [("TARGET", "TAGS", "PLATFORMS")]
    for target in plan.targets:
        tags = plan.resolved_tags(target, values)
        sources = [resolve(model.platform_tag(plan, target, p), values) for p in target.platforms]
        command = ["docker", "buildx", "imagetools", "create", *(f"--tag={t}" for t in tags), *sources]
        print(f"==> {target.name}: {shlex.join(command)}", file=sys.stderr)
        if dry_run:
            continue
        from python_on_whales.exceptions import DockerException

        try:
            buildx.imagetools_create(tags, sources, builder=builder)
            platforms = buildx.imagetools_platforms(tags[0])
        except DockerException as exc:
            detail = (exc.stderr or "").strip().splitlines()
            print(f"bakegen: merge failed for {target.name}: {detail[-1] if detail else exc}", file=sys.stderr)
            return EXIT_FAILED
        rows.append((target.name, " ".join(t.rsplit(":", 1)[-1] for t in tags), ",".join(platforms)))
    if not dry_run:
        print(format_table(rows))
    return EXIT_OK
