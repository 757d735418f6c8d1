"""`bakegen bake`: render, then build (and push) through `docker buildx bake`.

The docker driver builds one platform at a time, as do per-platform CI runners, so a
build is a list of slices: the whole plan, or one slice per platform whose images are
pushed as TAG-ARCH and merged into TAG (`--split-platforms`, or `bakegen merge`).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bakegen import model
from bakegen.errors import EXIT_FAILED, EXIT_OK, BakegenError
from bakegen.model import BuildPlan
from bakegen.output import write_atomic
from bakegen.pipeline import compile_spec
from bakegen.render import render_hcl
from bakegen.runners import buildx
from bakegen.runners.smoke import ImageChecks
from bakegen.tables import format_table

# Convenience flags for the ARGs users touch most; each sets the bake variable of that name.
CONVENIENCE_VARIABLES = {"cuda_version": "CUDA_VERSION", "cuda_arch": "CUDA_DOCKER_ARCH", "musa_version": "MUSA_VERSION"}


@dataclass(frozen=True)
class Slice:
    """One bake run: part of the plan, for one platform or for the targets' own platforms."""

    label: str
    plan: BuildPlan


def variable_overrides(args: argparse.Namespace, plan: BuildPlan) -> dict[str, str]:
    overrides = dict(args.var)
    known = {v.name for v in plan.variables}
    for option, name in CONVENIENCE_VARIABLES.items():
        value = getattr(args, option, None)
        if value is None:
            continue
        if name not in known:
            flag = "--" + option.replace("_", "-")
            raise BakegenError(f"{flag}: this spec has no bake variable {name} (variables: {', '.join(sorted(known))})")
        overrides[name] = value
    return overrides


def plan_slices(plan: BuildPlan, args: argparse.Namespace, driver: Callable[[], str], native: Callable[[], str]) -> list[Slice]:
    """How to build the plan. driver and native are asked only when the answer depends on them."""
    multi = any(len(t.platforms) > 1 for t in plan.targets)
    if args.platform:
        narrowed = model.for_platform(plan, args.platform, platform_tags=args.platform_tags)
        if not narrowed.targets:
            raise BakegenError(f"--platform {args.platform}: none of the selected targets builds for it")
        return [Slice(args.platform, narrowed)]
    if args.split_platforms:
        return [Slice(p, model.for_platform(plan, p, platform_tags=True)) for p in model.platforms_of(plan.targets)]
    if multi and args.push and driver() == "docker":
        raise BakegenError(
            "the docker driver builds one platform at a time and some targets have several: add --split-platforms "
            "(build each platform, push TAG-ARCH, merge into TAG), or --platform PLATFORM, or use a docker-container builder"
        )
    if multi and not args.push:
        platform = native()
        print(
            f"note: multi-platform targets are built for {platform} only (as docker build does); --split-platforms builds them all",
            file=sys.stderr,
        )
        return [Slice(platform, model.for_native(plan, platform))]
    return [Slice("all", plan)]


def run(args: argparse.Namespace) -> int:
    if args.push and args.load and args.split_platforms:
        raise BakegenError("--split-platforms with --push already keeps each platform's image; drop --load")
    overrides = tuple(_set_pair(item) for item in args.set)
    compiled = compile_spec(args.file, strict=args.strict)
    plan = model.only(compiled.plan, compiled.plan.select(args.names))
    values = plan.values(variable_overrides(args, plan))
    driver = functools.cache(lambda: buildx.builder_driver(args.builder))
    if any(t.cache_to for t in plan.targets) and driver() == "docker":
        print("note: the docker driver cannot export a build cache; building without cache-to (cache-from is kept)", file=sys.stderr)
        plan = model.without_cache_export(plan)
    slices = plan_slices(plan, args, driver, buildx.native_platform)
    spec_dir = compiled.spec.directory.resolve()
    if args.dry_run:
        if args.smoke:
            print(
                "(then `bakegen smoke` on the built images" + (", and the push only if they pass)" if args.push else ")"), file=sys.stderr
            )
        return _bake_slices(args, slices, values, spec_dir, overrides, push=args.push, load=args.load)

    if args.smoke and args.push:
        # Build and load, smoke-test, and only then push: a failed check pushes nothing.
        code = _bake_slices(args, slices, values, spec_dir, overrides, push=False, load=True)
        if code != EXIT_OK:
            return code
        from bakegen.commands import smoke

        code = smoke.check_plan(plan, values, args, images=_built_images(slices, values))
        if code != EXIT_OK:
            print("bakegen: smoke checks failed; nothing was pushed", file=sys.stderr)
            return code
    code = _bake_slices(args, slices, values, spec_dir, overrides, push=args.push, load=args.load)
    if code != EXIT_OK:
        return code
    if args.smoke and not args.push:
        from bakegen.commands import smoke

        code = smoke.check_plan(plan, values, args, images=_built_images(slices, values))
        if code != EXIT_OK:
            return code
    if args.split_platforms and args.push:
        from bakegen.commands import merge

        return merge.merge_plan(plan, values, builder=args.builder, dry_run=False)
    return EXIT_OK


def _slice_key(target: str, part: Slice, slices: list[Slice]) -> str:
    """A target's name in reports; with several slices, which slice too: full-cpu@linux/arm64."""
    return f"{target}@{part.label}" if len(slices) > 1 else target


def _built_images(slices: list[Slice], values: dict[str, str]) -> list[ImageChecks]:
    """The image each slice left for each target (TAG-ARCH with --platform-tags) and its checks."""
    return [
        (_slice_key(t.name, part, slices), part.plan.resolved_tags(t, values)[0], t.checks)
        for part in slices
        for t in part.plan.targets
        if t.checks
    ]


def _bake_slices(
    args: argparse.Namespace,
    slices: list[Slice],
    values: dict[str, str],
    spec_dir: Path,
    overrides: tuple[tuple[str, str], ...],
    *,
    push: bool,
    load: bool,
) -> int:
    rows: list[tuple[str, ...]] = []
    metadata: dict[str, dict[str, object]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="bakegen-"))
    try:
        for index, part in enumerate(slices):
            bake_file = workdir / f"docker-bake.{index}.hcl"
            bake_file.write_text(render_hcl(part.plan, str(bake_file)), encoding="utf-8")
            invocation = buildx.BakeInvocation(
                bake_file=bake_file,
                targets=tuple(t.name for t in part.plan.targets),
                cwd=spec_dir,
                variables=values,
                push=push,
                load=load,
                overrides=overrides,
                builder=args.builder,
                metadata_file=workdir / f"metadata.{index}.json",
                no_cache=args.no_cache,
            )
            print(f"==> {part.label}: {invocation.shell()}", file=sys.stderr)
            if args.dry_run:
                print(bake_file.read_text(encoding="utf-8"))
                continue
            started = time.monotonic()
            echo = (lambda line: None) if args.progress == "quiet" else (lambda line: print(line, file=sys.stderr, flush=True))
            outcome = buildx.run_bake(invocation, echo)
            metadata.update({_slice_key(name, part, slices): data for name, data in outcome.metadata.items()})
            if not outcome.ok:
                _report_failure(outcome, part.label)
                return EXIT_FAILED
            rows += _summary_rows(part.plan, values, outcome, time.monotonic() - started)
    finally:
        if not args.dry_run:
            for path in workdir.iterdir():
                path.unlink()
            workdir.rmdir()
        else:
            print(f"(rendered bake files kept in {workdir})", file=sys.stderr)
    if args.dry_run:
        return EXIT_OK
    print(format_table([("TARGET", "TAGS", "PLATFORMS", "DIGEST", "SIZE", "SECONDS"), *rows]))
    if args.metadata_file:
        write_atomic(Path(args.metadata_file), json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    return EXIT_OK


def _summary_rows(plan: BuildPlan, values: dict[str, str], outcome: buildx.BakeOutcome, total: float) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    first_tags = [tags[0] for tags in (plan.resolved_tags(t, values) for t in plan.targets) if tags]
    sizes = buildx.image_sizes(first_tags)
    for target in plan.targets:
        tags = plan.resolved_tags(target, values)
        digest = str(outcome.metadata.get(target.name, {}).get("containerimage.digest", "-"))
        size = sizes.get(tags[0]) if tags else None
        log = outcome.targets.get(target.name)
        seconds = log.seconds if log else total
        short_tags = " ".join(t.rsplit(":", 1)[-1] for t in tags)
        rows.append(
            (target.name, short_tags, ",".join(target.platforms), digest[:19], _human(size) if size is not None else "-", f"{seconds:.1f}")
        )
    return rows


def _report_failure(outcome: buildx.BakeOutcome, label: str) -> None:
    failed = outcome.failed_targets
    print(f"\nbakegen: build failed ({label}): {', '.join(failed) or 'bake'}", file=sys.stderr)
    for name in failed:
        print(f"--- last lines of {name} ---", file=sys.stderr)
        for line in list(outcome.targets[name].lines)[-10:]:
            print(f"  {line}", file=sys.stderr)
    print(f"error: {outcome.error}", file=sys.stderr)


def _set_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or "." not in key:
        raise BakegenError(f"--set {text!r}: expected PATTERN.KEY=VALUE, e.g. '*.platform=linux/amd64'")
    return key, value


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value, unit = float(size) / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"
