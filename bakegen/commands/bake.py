"""`bakegen bake`: build (and push) through `docker buildx bake`, as a list of steps.

The docker driver builds one platform at a time, as do per-platform CI runners, so the
build is a list of slices: the whole plan, or one slice per platform whose images are
pushed by digest and merged into the final tags (`--split-platforms`, or `bakegen merge --from`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from bakegen import annotation_levels, report
from bakegen.commands.common import Selection, SpecOptions, cli_words, load, selected
from bakegen.errors import EXIT_OK, BakegenError, EngineError
from bakegen.model import BuildPlan
from bakegen.output import write_atomic
from bakegen.progress import ProgressMode, ResolvedMode, Terminal, resolve_mode, use_color
from bakegen.runners import buildx
from bakegen.runners.smoke import ImageChecks
from bakegen.slices import Slice, for_native, for_platform, platforms_of, without_cache_export
from bakegen.steps import BUILT, BuildSettings, BuildStep, MergeStep, PushStep, RunRecord, SmokeSettings, SmokeStep, Step, execute


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
    provenance: str | None = None  # --provenance[=VALUE], as buildx takes it
    sbom: str | None = None  # --sbom[=VALUE]
    progress: ProgressMode = "auto"  # --progress; quiet (or -q) also hides notes and warnings
    json: bool = False  # --json: the summary as one JSON document on stdout; human output goes to stderr
    force: bool = False  # with --push: build and push even the images whose published inputs digest is this run's


def run(spec: SpecOptions, selection: Selection, options: BakeOptions, environ: Mapping[str, str]) -> int:
    if options.push and options.load and options.split_platforms:
        raise BakegenError("--split-platforms with --push already keeps each platform's image; drop --load")
    check_writable(options.metadata_file, options.smoke_settings.junit_xml)
    started = time.monotonic()
    quiet = options.quiet or options.progress == "quiet"
    terminal = Terminal.of(sys.stderr, environ)
    report.configure(quiet=quiet, color=use_color(terminal))
    mode = resolve_mode(options.progress, terminal)
    options = replace(options, quiet=quiet)
    compiled = load(spec)
    plan, values = selected(compiled, selection, environ)
    driver = functools.cache(lambda: buildx.builder_driver(options.builder))
    refuse_unsupported_attestations(options, driver)
    warn_dropped_annotations(plan, options, driver)
    if any(t.cache for t in plan.targets) and driver() == "docker":
        report.progress("note: the docker driver cannot export a build cache; building without cache-to (cache-from is kept)")
        plan = without_cache_export(plan)
    slices = plan_slices(plan, options, driver, buildx.native_platform)
    docker_driver = options.push and driver() == "docker"
    with cli_words(plan):
        steps = bake_steps(plan, slices, values, options, compiled.spec.directory.resolve(), docker_driver=docker_driver, mode=mode)
    if options.push:  # inputs digests (only pushed images need one: docker-py's import alone costs ~0.3 s), sizes, budgets
        from bakegen.unchanged import SizeStep  # here: the other commands never load it

        steps.insert(0, inputs_step(slices, values, options, compiled.spec.directory.resolve(), docker_driver=docker_driver))
        steps.insert(next((i for i, s in enumerate(steps) if isinstance(s, MergeStep)), len(steps)), SizeStep(plan, values))
    # With --json, stdout carries the JSON document alone: everything else a step prints goes to stderr.
    with contextlib.redirect_stdout(sys.stderr) if options.json else contextlib.nullcontext():
        code, record = execute(steps, dry_run=options.dry_run)
        if code == EXIT_OK and record.rows:
            print(report.format_table([report.BAKE_HEADER, *record.rows.values()]))
    if not options.dry_run:
        statuses = [str(r["status"]) for r in record.results.values()]
        counts = statuses.count("built"), statuses.count("failed"), time.monotonic() - started, statuses.count("not built")
        report.result(report.bake_closing_line(*counts))
    if options.json:
        print(json.dumps(bake_json(record, code, time.monotonic() - started), indent=2))
    if code == EXIT_OK and options.metadata_file and not options.dry_run:
        write_atomic(options.metadata_file, json.dumps(record.metadata(), indent=2, sort_keys=True) + "\n")
    return code


def bake_steps(
    plan: BuildPlan,
    slices: list[Slice],
    values: dict[str, str],
    options: BakeOptions,
    directory: Path,
    *,
    docker_driver: bool = True,
    mode: ResolvedMode = "plain",
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
        attest=attestations(options),
        progress=mode,
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


def bake_json(record: RunRecord, code: int, seconds: float) -> dict[str, object]:
    """The --json document: every target slice built (or not), its digests with their kind, the smoke checks, the merges."""
    targets = []
    for key, result in record.results.items():
        built = record.built.get(key)
        digests = []
        if built and built.digest:
            digests.append({"kind": "manifest", "digest": built.digest, "repository": built.repository})
        if built and built.image_id.startswith("sha256:"):
            digests.append({"kind": "image-id", "digest": built.image_id})
        platforms = built.platform.split(",") if built else result.get("platforms", [])
        targets.append({"key": key, **result, "platforms": platforms, "digests": digests})
    return {
        "command": "bake",
        "status": "ok" if code == EXIT_OK else "failed",
        "exit_code": code,
        "seconds": round(seconds, 3),
        "targets": targets,
        "checks": report.smoke_json(record.smoked),
        "merged": record.merged,
    }


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


# -- supply chain: attestations and annotations --

_PARSE_BOOL = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True}
_PARSE_BOOL |= {"0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def attestations(options: BakeOptions) -> tuple[str, ...]:
    """--provenance and --sbom as bake's `attest` entries, canonical as buildx makes them (a boolean value
    turns the attestation on or off; anything else is its parameters: `mode=max`, `generator=IMAGE`)."""
    out = []
    for kind, value in (("provenance", options.provenance), ("sbom", options.sbom)):
        if value is None:
            continue
        on = _PARSE_BOOL.get(value)
        out.append(f"type={kind},disabled={str(not on).lower()}" if on is not None else f"type={kind},{value}")
    return tuple(out)


def refuse_unsupported_attestations(options: BakeOptions, driver: Callable[[], str]) -> None:
    """The docker driver cannot attach attestations (buildx refuses them), and the image it loads, which
    bakegen uploads, could not carry them anyway: asking for them there is refused, before any build."""
    wanted = [f"--{kind}" for kind, value in (("provenance", options.provenance), ("sbom", options.sbom)) if value is not None]
    wanted = [flag for flag in wanted if _PARSE_BOOL.get(getattr(options, flag[2:])) is not False]
    if wanted and driver() == "docker":
        raise BakegenError(
            f"{' and '.join(wanted)}: the docker driver cannot attach attestations; use a docker-container builder "
            "(docker buildx create --use --driver docker-container, or --builder NAME)"
        )


def warn_dropped_annotations(plan: BuildPlan, options: BakeOptions, driver: Callable[[], str]) -> None:
    """The docker driver's image store keeps no annotations: say which ones this run loses, in one line."""
    written = sorted({a for t in plan.targets for a in t.annotations})
    try:
        if not written or driver() != "docker":
            return
    except EngineError:  # no engine to ask (a --dry-run here): the build itself says so
        return
    dropped = annotation_levels.dropped_by_docker_driver(written, uploaded=options.push)
    if dropped:
        report.dropped_annotations(dropped, pushed=options.push)
