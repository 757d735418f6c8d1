"""`bakegen bake`: build (and push) through `docker buildx bake`, as a list of steps.

The docker driver builds one platform at a time, as do per-platform CI runners, so the
build is a list of slices: the whole plan, or one slice per platform whose images are
pushed as TAG-ARCH and merged into TAG (`--split-platforms`, or `bakegen merge`).
The steps: build each slice -> smoke-test -> (build again with push) -> merge.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bakegen import report
from bakegen.commands.common import Selection, SpecOptions, cli_words, load, selected
from bakegen.errors import EXIT_OK, BakegenError
from bakegen.model import BuildPlan
from bakegen.output import write_atomic
from bakegen.runners import buildx
from bakegen.runners.smoke import ImageChecks
from bakegen.slices import Slice, for_native, for_platform, platforms_of, without_cache_export
from bakegen.steps import BuildSettings, BuildStep, MergeStep, SmokeSettings, SmokeStep, Step, execute


@dataclass(frozen=True)
class BakeOptions:
    push: bool = False
    load: bool = False
    overrides: tuple[tuple[str, str], ...] = ()  # --set PATTERN.KEY=VALUE
    platform: str | None = None
    platform_tags: bool = False
    split_platforms: bool = False
    builder: str | None = None
    metadata_file: Path | None = None
    dry_run: bool = False
    quiet: bool = False
    no_cache: bool = False
    smoke: bool = False
    smoke_settings: SmokeSettings = field(default_factory=SmokeSettings)


def run(spec: SpecOptions, selection: Selection, options: BakeOptions, environ: Mapping[str, str]) -> int:
    if options.push and options.load and options.split_platforms:
        raise BakegenError("--split-platforms with --push already keeps each platform's image; drop --load")
    compiled = load(spec)
    plan, values = selected(compiled, selection, environ)
    driver = functools.cache(lambda: buildx.builder_driver(options.builder))
    if any(t.cache for t in plan.targets) and driver() == "docker":
        report.progress("note: the docker driver cannot export a build cache; building without cache-to (cache-from is kept)")
        plan = without_cache_export(plan)
    slices = plan_slices(plan, options, driver, buildx.native_platform)
    with cli_words(plan):
        steps = bake_steps(plan, slices, values, options, compiled.spec.directory.resolve())
    code, record = execute(steps, dry_run=options.dry_run)
    if code == EXIT_OK and record.rows:
        print(report.format_table([report.BAKE_HEADER, *record.rows.values()]))
        if options.metadata_file:
            write_atomic(options.metadata_file, json.dumps(record.metadata, indent=2, sort_keys=True) + "\n")
    return code


def bake_steps(plan: BuildPlan, slices: list[Slice], values: dict[str, str], options: BakeOptions, directory: Path) -> list[Step]:
    """The run, in order. With --smoke and --push, images are built and loaded, checked, and only
    then built again with push (from the cache), so a failed check pushes nothing."""
    several = len(slices) > 1

    def builds(*, push: bool, load: bool) -> list[Step]:
        settings = BuildSettings(directory, push, load, options.overrides, options.builder, options.no_cache, options.quiet)
        return [BuildStep(part, index, several, values, settings) for index, part in enumerate(slices)]

    smoke: list[Step] = []
    if options.smoke:
        images = tuple(
            ImageChecks(part.key(t.name, several), part.plan.local_image(t, values), t.checks)
            for part in slices
            for t in part.plan.targets
            if t.checks
        )
        if not images:
            report.progress("note: --smoke: the selected targets declare no checks (see `checks` in the spec); nothing to smoke-test")
        smoke = [SmokeStep(images, values, options.smoke_settings, gates_push=options.push)] if images else []
    steps = [*builds(push=False, load=True), *smoke] if smoke and options.push else []
    steps += builds(push=options.push, load=options.load)
    if smoke and not options.push:
        steps += smoke
    if options.split_platforms and options.push:
        steps.append(MergeStep(plan, values, options.builder))
    return steps


def plan_slices(plan: BuildPlan, options: BakeOptions, driver: Callable[[], str], native: Callable[[], str]) -> list[Slice]:
    """How to build the plan. driver and native are asked only when the answer depends on them."""
    multi = any(len(t.platforms) > 1 for t in plan.targets)
    if options.platform:
        narrowed = for_platform(plan, options.platform, platform_tags=options.platform_tags)
        if not narrowed.targets:
            raise BakegenError(f"--platform {options.platform}: none of the selected targets builds for it")
        return [Slice(options.platform, narrowed)]
    if options.split_platforms:
        return [Slice(p, for_platform(plan, p, platform_tags=True)) for p in platforms_of(plan.targets)]
    if multi and options.push and driver() == "docker":
        raise BakegenError(
            "the docker driver builds one platform at a time and some targets have several: add --split-platforms "
            "(build each platform, push TAG-ARCH, merge into TAG), or --platform PLATFORM, or use a docker-container builder"
        )
    if multi and not options.push:
        # As `docker build` does: the engine's own platform (the PLATFORMS column shows it).
        platform = native()
        return [Slice(platform, for_native(plan, platform))]
    return [Slice("all", plan)]
