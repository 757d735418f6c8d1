"""The steps a run is made of: build a slice, smoke-test images, merge platforms into tags.

Each step can say exactly what it will do (`describe`, which `--dry-run` prints) and then do it
(`run`). `bake`, `smoke` and `merge` are lists of these steps, executed in order until one fails.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Protocol

from bakegen import report
from bakegen.errors import EXIT_FAILED, EXIT_OK, EngineError
from bakegen.model import BuildPlan
from bakegen.output import write_atomic
from bakegen.render import render_hcl
from bakegen.runners import buildx
from bakegen.runners.smoke import CaseOutcome, ImageChecks, SmokeSession, cases_for
from bakegen.slices import Slice, platform_tag
from bakegen.template import resolve


@dataclass
class RunRecord:
    """What the steps of one run leave for its summary: a table row and build metadata per target."""

    workdir: Path
    rows: dict[str, tuple[str, ...]] = field(default_factory=dict)
    metadata: dict[str, dict[str, object]] = field(default_factory=dict)


class Step(Protocol):
    def describe(self, record: RunRecord) -> str:
        """One line (or a few) saying exactly what the step runs."""

    def preview(self, record: RunRecord) -> str:
        """What --dry-run prints on stdout besides the description (the bake file of a build)."""

    def run(self, record: RunRecord) -> int: ...


def execute(steps: Sequence[Step], *, dry_run: bool) -> tuple[int, RunRecord]:
    """Run the steps in order and stop at the first that fails; with dry_run, only describe them."""
    record = RunRecord(Path(tempfile.mkdtemp(prefix="bakegen-")))
    try:
        for step in steps:
            report.progress(f"==> {step.describe(record)}")
            if dry_run:
                print(step.preview(record), end="")
                continue
            code = step.run(record)
            if code != EXIT_OK:
                return code, record
        return EXIT_OK, record
    finally:
        if dry_run:
            report.progress(f"(rendered bake files kept in {record.workdir})")
        else:
            shutil.rmtree(record.workdir, ignore_errors=True)


# -- build --


@dataclass(frozen=True)
class BuildSettings:
    """How every slice of one run is built."""

    directory: Path
    push: bool = False
    load: bool = False
    overrides: tuple[tuple[str, str], ...] = ()
    builder: str | None = None
    no_cache: bool = False
    quiet: bool = False


@dataclass(frozen=True)
class BuildStep:
    """One `docker buildx bake` run over a slice of the plan."""

    part: Slice
    index: int
    several: bool
    values: Mapping[str, str]
    settings: BuildSettings

    def invocation(self, record: RunRecord) -> buildx.BakeInvocation:
        bake_file = record.workdir / f"docker-bake.{self.index}.hcl"
        if not bake_file.exists():
            bake_file.write_text(render_hcl(self.part.plan, str(bake_file)), encoding="utf-8")
        s = self.settings
        return buildx.BakeInvocation(
            bake_file=bake_file,
            targets=tuple(t.name for t in self.part.plan.targets),
            cwd=s.directory,
            variables=dict(self.values),
            push=s.push,
            load=s.load,
            overrides=s.overrides,
            builder=s.builder,
            metadata_file=record.workdir / f"metadata.{self.index}.json",
            no_cache=s.no_cache,
        )

    def describe(self, record: RunRecord) -> str:
        return f"build {self.part.label}: {self.invocation(record).shell()}"

    def preview(self, record: RunRecord) -> str:
        return self.invocation(record).bake_file.read_text(encoding="utf-8")

    def run(self, record: RunRecord) -> int:
        started = time.monotonic()
        echo = (lambda line: None) if self.settings.quiet else report.progress
        outcome = buildx.run_bake(self.invocation(record), echo)
        record.metadata.update({self.part.key(name, self.several): data for name, data in outcome.metadata.items()})
        if not outcome.ok:
            report.build_failure(outcome, self.part.label)
            return EXIT_FAILED
        plan = self.part.plan
        first_tags = [tags[0] for tags in (plan.resolved_tags(t, self.values) for t in plan.targets) if tags]
        sizes = buildx.image_sizes(first_tags)
        for target in plan.targets:
            tags = plan.resolved_tags(target, self.values)
            digest = str(outcome.metadata.get(target.name, {}).get("containerimage.digest", "-"))
            size = sizes.get(tags[0]) if tags else None
            log = outcome.targets.get(target.name)
            seconds = log.seconds if log else time.monotonic() - started
            record.rows[self.part.key(target.name, self.several)] = (
                target.name, report.short_tags(tags), ",".join(target.platforms), digest[:19],
                report.human_size(size) if size is not None else "-", f"{seconds:.1f}",
            )  # fmt: skip
        return EXIT_OK


# -- smoke --


@dataclass(frozen=True)
class SmokeSettings:
    jobs: int = 2
    gpus: str | None = None
    junit_xml: Path | None = None


@dataclass(frozen=True)
class SmokeStep:
    """Run the checks of some images with testcontainers; every container is removed afterwards."""

    images: tuple[ImageChecks, ...]
    values: Mapping[str, str]
    settings: SmokeSettings
    gates_push: bool = False  # a push follows only if every check passes

    def describe(self, record: RunRecord) -> str:
        count = sum(len(i.checks) for i in self.images)
        return f"smoke: {count} checks on {', '.join(i.image for i in self.images)}"

    def preview(self, record: RunRecord) -> str:
        return ""

    def run(self, record: RunRecord) -> int:
        cases = cases_for(self.images)
        session = SmokeSession(dict(self.values), gpus=self.settings.gpus)
        report.progress(f"smoke: {len(cases)} checks, {self.settings.jobs} at a time (session {session.id})")

        def live(outcome: CaseOutcome) -> None:
            report.progress(report.smoke_line(outcome))

        with _sigterm_as_interrupt():
            outcomes = session.run_all(cases, self.settings.jobs, live)
        report.smoke_summary(outcomes)
        if self.settings.junit_xml:
            write_atomic(self.settings.junit_xml, report.junit_xml(outcomes))
        if any(o.result == "fail" for o in outcomes):
            if self.gates_push:
                report.progress("bakegen: smoke checks failed; nothing was pushed")
            return EXIT_FAILED
        return EXIT_OK


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI cancel, `timeout`) cleans up like Ctrl-C does."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- merge --


@dataclass(frozen=True)
class MergeStep:
    """Publish each target's tags as one manifest list of its per-platform images (TAG-ARCH)."""

    plan: BuildPlan
    values: Mapping[str, str]
    builder: str | None = None

    def sources(self) -> list[tuple[str, list[str], list[str]]]:
        """(target, final tags, per-platform sources) for every target."""
        return [
            (t.name, self.plan.resolved_tags(t, self.values), [resolve(platform_tag(self.plan, t, p), self.values) for p in t.platforms])
            for t in self.plan.targets
        ]

    def describe(self, record: RunRecord) -> str:
        commands = [
            shlex.join(["docker", "buildx", "imagetools", "create", *(f"--tag={t}" for t in tags), *sources])
            for _, tags, sources in self.sources()
        ]
        return "merge:\n    " + "\n    ".join(commands)

    def preview(self, record: RunRecord) -> str:
        return ""

    def run(self, record: RunRecord) -> int:
        rows = [("TARGET", "TAGS", "PLATFORMS")]
        for name, tags, sources in self.sources():
            try:
                buildx.imagetools_create(tags, sources, builder=self.builder)
                platforms = buildx.imagetools_platforms(tags[0])
            except EngineError as exc:
                report.progress(f"bakegen: merge failed for {name}: {exc.message}")
                return EXIT_FAILED
            rows.append((name, report.short_tags(tags), ",".join(platforms)))
        print(report.format_table(rows))
        return EXIT_OK
