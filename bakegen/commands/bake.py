"""`bakegen bake`: build (and push) through `docker buildx bake`, as a list of steps.

The docker driver builds one platform at a time, as do per-platform CI runners, so the
build is a list of slices: the whole plan, or one slice per platform whose images are
pushed by digest and merged into the final tags (`--split-platforms`, or `bakegen merge --from`).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bakegen import report
from bakegen.commands.common import Selection, SpecOptions, cli_words, load, selected
from bakegen.errors import EXIT_OK, BakegenError, EngineError
from bakegen.model import BuildPlan
from bakegen.output import write_atomic
from bakegen.runners import buildx
from bakegen.runners.smoke import ImageChecks
from bakegen.slices import Slice, for_native, for_platform, platforms_of, without_cache_export
from bakegen.steps import BUILT, BuildSettings, BuildStep, MergeStep, PushStep, SmokeSettings, SmokeStep, Step, execute


@dataclass(frozen=True)
class BakeOptions:
    push: bool = False
    load: bool = False
    overrides: tuple[tuple[str, str], ...] = ()  # --set PATTERN.KEY=VALUE
    platform: str | None = None
    split_platforms: bool = False
    builder: str | None = None
    metadata_file: Path | None = None
    dry_run: bool = False
    quiet: bool = False
    no_cache: bool = False
    smoke: bool = False
    smoke_settings: SmokeSettings = field(default_factory=SmokeSettings)
    force: bool = False  # with --push: build and push even the images whose published inputs digest is this run's


def run(spec: SpecOptions, selection: Selection, options: BakeOptions, environ: Mapping[str, str]) -> int:
    if options.push and options.load and options.split_platforms:
        raise BakegenError("--split-platforms with --push already keeps each platform's image; drop --load")
    check_writable(options.metadata_file, options.smoke_settings.junit_xml)
    compiled = load(spec)
    plan, values = selected(compiled, selection, environ)
    driver = functools.cache(lambda: buildx.builder_driver(options.builder))
    if any(t.cache for t in plan.targets) and driver() == "docker":
        report.progress("note: the docker driver cannot export a build cache; building without cache-to (cache-from is kept)")
        plan = without_cache_export(plan)
    slices = plan_slices(plan, options, driver, buildx.native_platform)
    docker_driver = options.push and driver() == "docker"
    with cli_words(plan):
        steps = bake_steps(plan, slices, values, options, compiled.spec.directory.resolve(), docker_driver=docker_driver)
    if options.push:  # inputs digests (only pushed images need one: docker-py's import alone costs ~0.3 s), sizes, budgets
        from bakegen.unchanged import SizeStep  # here: the other commands never load it

        steps.insert(0, inputs_step(slices, values, options, compiled.spec.directory.resolve(), docker_driver=docker_driver))
        steps.insert(next((i for i, s in enumerate(steps) if isinstance(s, MergeStep)), len(steps)), SizeStep(plan, values))
    code, record = execute(steps, dry_run=options.dry_run)
    if code == EXIT_OK and record.rows:
        print(report.format_table([report.BAKE_HEADER, *record.rows.values()]))
    if code == EXIT_OK and options.metadata_file and not options.dry_run:
        write_atomic(options.metadata_file, json.dumps(record.metadata(), indent=2, sort_keys=True) + "\n")
    return code


def bake_steps(
    plan: BuildPlan, slices: list[Slice], values: dict[str, str], options: BakeOptions, directory: Path, *, docker_driver: bool = True
) -> list[Step]:
    """The run, in order: build -> smoke-test -> push by digest -> merge into the final tags.

    With --push every image goes to the registry untagged, by digest; only the merge publishes tags,
    and only after the checks passed, so no intermediate tag ever exists and a failed check publishes
    nothing. The docker driver cannot push by digest: it loads, is checked, and bakegen uploads exactly
    that image (PushStep). Other drivers push by digest themselves and the checks run on the pushed digest.
    With --platform (one CI runner per platform) the run stops before the merge: `bakegen merge --from`
    publishes the tags once every platform is there."""
    several = len(slices) > 1
    upload = options.push and docker_driver
    settings = BuildSettings(
        directory,
        push=options.push and not upload,
        load=options.load or upload or (options.smoke and not options.push),
        overrides=options.overrides,
        builder=options.builder,
        no_cache=options.no_cache,
        quiet=options.quiet,
        by_digest=options.push and not upload,
    )
    steps: list[Step] = [BuildStep(part, index, several, values, settings) for index, part in enumerate(slices)]
    if options.smoke:
        images = tuple(
            ImageChecks(part.key(t.name, several), BUILT + part.key(t.name, several), t.checks)
            for part in slices
            for t in part.plan.targets
            if t.checks
        )
        if images:
            steps.append(SmokeStep(images, values, options.smoke_settings, gates_push=options.push))
        else:
            report.progress("note: --smoke: the selected targets declare no checks (see `checks` in the spec); nothing to smoke-test")
    if upload:
        steps += [PushStep(part, several) for part in slices]
    if options.push and not options.platform:
        steps.append(MergeStep(plan, values, builder=options.builder))
    return steps


def inputs_step(slices: list[Slice], values: dict[str, str], options: BakeOptions, directory: Path, *, docker_driver: bool) -> Step:
    """Label every pushed image with its inputs digest, and skip the unchanged ones (unless --force)."""
    from bakegen.unchanged import UnchangedStep

    return UnchangedStep(
        tuple(slices), len(slices) > 1, values, directory, options.overrides,
        look_up=not options.force,
        local_engine=docker_driver,  # a docker-container builder cannot see the engine's images
    )  # fmt: skip


def check_writable(*paths: Path | None) -> None:
    """A report that cannot be written is found before any work starts, not after the build."""
    for path in paths:
        if path is None:
            continue
        parent = path.parent if str(path.parent) else Path(".")
        if path.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK):
            raise EngineError(f"{path}: cannot be written ({'a directory' if path.is_dir() else 'its directory is missing or read-only'})")


def plan_slices(plan: BuildPlan, options: BakeOptions, driver: Callable[[], str], native: Callable[[], str]) -> list[Slice]:
    """How to build the plan. driver and native are asked only when the answer depends on them."""
    multi = any(len(t.platforms) > 1 for t in plan.targets)
    if options.platform:
        narrowed = for_platform(plan, options.platform)
        if not narrowed.targets:
            raise BakegenError(f"--platform {options.platform}: none of the selected targets builds for it")
        return [Slice(options.platform, narrowed)]
    if options.split_platforms or (multi and options.push and driver() == "docker"):
        # The docker driver builds one platform at a time: a push of multi-platform targets is split.
        return [Slice(p, for_platform(plan, p)) for p in platforms_of(plan.targets)]
    if multi and not options.push:
        # As `docker build` does: the engine's own platform (the PLATFORMS column shows it).
        platform = native()
        return [Slice(platform, for_native(plan, platform))]
    return [Slice("all", plan)]
