"""The steps a run is made of: build a slice, smoke-test images, merge platforms into tags.

Each step can say exactly what it will do (`describe`, which `--dry-run` prints) and then do it
(`run`). `bake`, `smoke` and `merge` are lists of these steps, executed in order until one fails.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from bakegen import report
from bakegen.errors import EXIT_FAILED, EXIT_OK
from bakegen.model import BuildPlan
from bakegen.output import write_atomic
from bakegen.progress import ResolvedMode, build_view, keyword_matches
from bakegen.render import render_hcl
from bakegen.runners import buildx, registry
from bakegen.runners.smoke import CaseOutcome, ImageChecks, SmokeSession, cases_for
from bakegen.slices import Slice, only


@dataclass
class BuiltImage:
    """One image this run built: a target for one platform (or the platforms of one multi-platform build)."""

    key: str  # the target as reports name it: full-cpu, or full-cpu@linux/arm64 with several slices
    target: str
    platform: str
    repository: str
    tags: tuple[str, ...]  # the target's final tags
    image_id: str = ""  # in the local engine (--load)
    digest: str = ""  # pushed, untagged, by digest
    size: int | None = None  # bytes, in the local engine
    smoke: str = ""  # the smoke result, "2 passed, 0 failed, 1 skipped"; empty when not checked
    unchanged: str = ""  # not built: the published image has the same inputs; the index digest its first tag points to

    def reference(self) -> str:
        """What a check runs: the pushed digest when there is one (it is what gets published), else the local image."""
        return f"{self.repository}@{self.digest}" if self.digest else self.image_id

    def as_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "platform": self.platform,
            "repository": self.repository,
            "digest": self.digest,
            "tags": list(self.tags),
        }

    def as_buildx_metadata(self) -> dict[str, str]:
        """This image's entry in --metadata-file as buildx keys them, plus bakegen's: what the job summary reads."""
        entry = {"containerimage.digest": self.digest or self.image_id, "bakegen.platforms": self.platform}
        entry |= {"bakegen.size": str(self.size)} if self.size is not None else {}
        return entry | ({"bakegen.smoke": self.smoke} if self.smoke else {})


@dataclass
class RunRecord:
    """What the steps of one run leave for the next steps and the summary."""

    workdir: Path
    built: dict[str, BuiltImage] = field(default_factory=dict)
    rows: dict[str, tuple[str, ...]] = field(default_factory=dict)
    merged: list[dict[str, object]] = field(default_factory=list)
    # For --json and the closing line: what each build left (size in bytes, seconds, status), by key.
    results: dict[str, dict[str, object]] = field(default_factory=dict)
    smoked: list[CaseOutcome] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)  # key -> inputs digest label (bakegen.unchanged)
    stale_tags: dict[str, list[str]] = field(default_factory=dict)  # unchanged target -> its tags to (re)publish

    def metadata(self) -> dict[str, object]:
        """The --metadata-file: per-platform digests (what `bakegen merge --from` reads) and the published indexes,
        and per built image (keyed as the table names it) buildx's containerimage.digest and bakegen.platforms,
        bakegen.size, bakegen.smoke: what the workflow's job summary shows. Target names always hold a '-',
        so they never meet the three fixed keys."""
        targets: dict[str, object] = {key: built.as_buildx_metadata() for key, built in self.built.items()}
        return targets | {
            "schema": DIGESTS_SCHEMA,
            "images": [b.as_json() for b in self.built.values() if b.digest],
            "merged": self.merged,
        }

    def note_smoke(self, outcomes: Sequence[CaseOutcome]) -> None:
        """Each checked image's result, for the metadata file (checks name their image as the table does)."""
        for key, built in self.built.items():
            mine = [str(o.result) for o in outcomes if o.case.target == key]
            if mine:
                counts = (f"{mine.count(result)} {word}" for result, word in (("pass", "passed"), ("fail", "failed"), ("skip", "skipped")))
                built.smoke = ", ".join(counts)


DIGESTS_SCHEMA = "bakegen.digests/v1"


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
    by_digest: bool = False  # push untagged by digest (BuildKit's push-by-digest; needs a docker-container builder)
    attest: tuple[str, ...] = ()  # bake `attest` entries (--provenance, --sbom): type=provenance,mode=max
    progress: ResolvedMode = "plain"  # how the build log is shown (bakegen.progress); quiet shows none


@dataclass(frozen=True)
class BuildStep:
    """One `docker buildx bake` run over a slice of the plan."""

    part: Slice
    index: int
    several: bool
    values: Mapping[str, str]
    settings: BuildSettings

    def to_build(self, record: RunRecord) -> BuildPlan:
        """The slice's plan without the images found unchanged (bakegen.unchanged)."""
        keep = [t for t in self.part.plan.targets if not record.built.get(self.part.key(t.name, self.several), _BUILD).unchanged]
        return self.part.plan if len(keep) == len(self.part.plan.targets) else only(self.part.plan, keep)

    def invocation(self, record: RunRecord) -> buildx.BakeInvocation:
        plan = self.to_build(record)
        bake_file = record.workdir / f"docker-bake.{self.index}.hcl"
        if not bake_file.exists():
            bake_file.write_text(render_hcl(plan, str(bake_file)), encoding="utf-8")
        s = self.settings
        overrides = s.overrides
        # The inputs digest goes on the image at bake time, not into the bake file (plan --json = bake --print).
        from bakegen.inputs import INPUTS_LABEL  # here: render and plan never load the inputs module

        for target in plan.targets:
            label = record.inputs.get(self.part.key(target.name, self.several))
            overrides += ((f"{target.name}.labels.{INPUTS_LABEL}", label),) if label else ()
        if s.by_digest:
            # No tag is pushed: each image goes up by digest, and `merge` tags the set of platforms at once.
            for target in plan.targets:
                repository = self.values[self.part.plan.repository_variable]
                output = f"type=image,name={repository},push-by-digest=true,name-canonical=true,push=true"
                overrides += ((f"{target.name}.output", output), (f"{target.name}.tags", ""))
        # bake adds up repeated `attest` overrides; run_bake passes --set as a mapping (one value per key), so
        # the first goes to `*.attest` and the second (there are two kinds at most) to each target's own key.
        for index, entry in enumerate(s.attest):
            keys = ["*.attest"] if index == 0 else [f"{t.name}.attest" for t in self.part.plan.targets]
            overrides += tuple((key, entry) for key in keys)
        return buildx.BakeInvocation(
            bake_file=bake_file,
            targets=tuple(t.name for t in plan.targets),
            cwd=s.directory,
            variables=dict(self.values),
            push=s.push and not s.by_digest,
            load=s.load,
            overrides=overrides,
            builder=s.builder,
            metadata_file=record.workdir / f"metadata.{self.index}.json",
            no_cache=s.no_cache,
        )

    def describe(self, record: RunRecord) -> str:
        if not self.to_build(record).targets:
            return f"build {self.part.label}: nothing to build, every image is unchanged"
        return f"build {self.part.label}: {self.invocation(record).shell()}"

    def preview(self, record: RunRecord) -> str:
        return self.invocation(record).bake_file.read_text(encoding="utf-8")

    def run(self, record: RunRecord) -> int:
        started = time.monotonic()
        plan = self.to_build(record)
        if not plan.targets:
            return EXIT_OK
        mode = "quiet" if self.settings.quiet else self.settings.progress
        with build_view(mode, [t.name for t in plan.targets], self.part.label, report.color()) as view:
            outcome = buildx.run_bake(self.invocation(record), view.line, progress="rawjson" if mode == "rawjson" else "plain")
            view.finish(outcome.failed_targets if not outcome.ok else [])
        if not outcome.ok:
            for target in plan.targets:
                key = self.part.key(target.name, self.several)
                status = "failed" if target.name in outcome.failed_targets else "not built"
                record.results[key] = {"target": target.name, "platforms": list(target.platforms), "status": status}
            report.build_failure(outcome, self.part.label)
            return EXIT_FAILED
        first_tags = [tags[0] for tags in (plan.resolved_tags(t, self.values) for t in plan.targets) if tags]
        sizes = buildx.image_sizes(first_tags)
        for target in plan.targets:
            tags = plan.resolved_tags(target, self.values)
            digest = str(outcome.metadata.get(target.name, {}).get("containerimage.digest", "-"))
            key = self.part.key(target.name, self.several)
            record.built[key] = BuiltImage(
                key, target.name, ",".join(target.platforms), self.values[plan.repository_variable], tuple(tags),
                image_id=digest if self.settings.load else "", digest=digest if self.settings.by_digest else "",
                size=sizes.get(tags[0]) if tags else None,
            )  # fmt: skip
            size = sizes.get(tags[0]) if tags else None
            log = outcome.targets.get(target.name)
            seconds = log.seconds if log else time.monotonic() - started
            record.results[key] = {
                "target": target.name, "platforms": list(target.platforms), "tags": list(tags), "status": "built",
                "size": size, "seconds": round(seconds, 3),
            }  # fmt: skip
            record.rows[key] = (
                target.name, report.short_tags(tags), ",".join(target.platforms), report.digest_cell(digest, self.settings.load),
                report.human_size(size) if size is not None else "-", f"{seconds:.1f}",
            )  # fmt: skip
        return EXIT_OK


# -- push by digest (docker driver) --


@dataclass(frozen=True)
class PushStep:
    """Upload the images a slice loaded into the engine to the registry, untagged, by digest.
    The docker driver cannot push by digest itself; this pushes exactly the image that was checked."""

    part: Slice
    several: bool

    def describe(self, record: RunRecord) -> str:
        names = [t.name for t in self.part.plan.targets if not record.built.get(self.part.key(t.name, self.several), _BUILD).unchanged]
        return f"push {self.part.label} by digest: {', '.join(names) or 'nothing, every image is unchanged'} (no tags)"

    def preview(self, record: RunRecord) -> str:
        return ""

    def run(self, record: RunRecord) -> int:
        for target in self.part.plan.targets:
            built = record.built[self.part.key(target.name, self.several)]
            if built.unchanged:
                continue
            # The docker driver drops manifest annotations on --load: the upload puts them back.
            built.digest = registry.push_by_digest(built.image_id, built.repository, target.manifest_annotations({}))
            row = record.rows.get(built.key)
            if row:
                record.rows[built.key] = (*row[:3], report.digest_cell(built.digest, False), *row[4:])
        return EXIT_OK


# -- smoke --


@dataclass(frozen=True)
class SmokeSettings:
    jobs: int = 2
    gpus: str | None = None
    junit_xml: Path | None = None
    exitfirst: bool = False  # -x: stop at the first failed check
    keyword: str | None = None  # -k: only the checks whose TARGET::CHECK name matches (bakegen.progress.keyword_matches)


@dataclass(frozen=True)
class SmokeStep:
    """Run the checks of some images with testcontainers; every container is removed afterwards.
    An image given as `built:KEY` is the one this run built for KEY (its image ID or pushed digest)."""

    images: tuple[ImageChecks, ...]
    values: Mapping[str, str]
    settings: SmokeSettings
    gates_push: bool = False  # a push follows only if every check passes

    def describe(self, record: RunRecord) -> str:
        images = self.images
        if record.built:  # after the builds: the images this run built (an unchanged one was checked when it was)
            images = tuple(i for i in images if not (i.image.startswith(BUILT) and _unchanged(record, i.image.removeprefix(BUILT))))
        if not images:
            return "smoke: nothing to check, every image is unchanged since it was published and checked"
        keyword = self.settings.keyword
        count = sum(1 for i in images for c in i.checks if not keyword or keyword_matches(keyword, f"{i.target}::{c.name}"))
        selected = f" matching -k {keyword!r}" if keyword else ""
        return f"smoke: {count} check{'s' if count != 1 else ''}{selected} on {', '.join(i.image.removeprefix(BUILT) for i in images)}"

    def resolved(self, record: RunRecord) -> list[ImageChecks]:
        out = []
        for item in self.images:
            if item.image.startswith(BUILT):
                built = record.built[item.image.removeprefix(BUILT)]
                if built.unchanged:
                    continue  # not built: checked when it was
                item = replace(item, image=built.reference(), platform=built.platform)
            out.append(item)
        return out

    def preview(self, record: RunRecord) -> str:
        return ""

    def run(self, record: RunRecord) -> int:
        session = SmokeSession(dict(self.values), gpus=self.settings.gpus)
        if not self.resolved(record):
            return EXIT_OK  # every image is unchanged
        images, missing = session.locate(self.resolved(record))
        if missing:
            report.progress(f"bakegen: not in the local engine (build with `bakegen bake --load`; never pulled): {', '.join(missing)}")
            return EXIT_FAILED
        cases = cases_for(images)
        if self.settings.keyword:
            cases = [c for c in cases if keyword_matches(self.settings.keyword, f"{c.target}::{c.check.name}")]
            if not cases:
                report.progress(f"bakegen: no check matches -k {self.settings.keyword!r} (names are TARGET::CHECK)")
                return EXIT_FAILED
        report.progress(f"smoke: {len(cases)} check{'s' if len(cases) != 1 else ''}, {self.settings.jobs} at a time (session {session.id})")
        columns = report.SmokeColumns.of(cases)
        started = time.monotonic()

        def live(outcome: CaseOutcome) -> None:
            report.result(report.smoke_line(outcome, columns))
            if self.settings.exitfirst and outcome.result == "fail" and not stopped_early:
                stopped_early.append(outcome)
                report.progress("bakegen: stopping at the first failed check (-x)")

        stopped_early: list[CaseOutcome] = []
        stop_when = (lambda o: o.result == "fail") if self.settings.exitfirst else None  # no new check starts; running ones finish

        # SIGTERM arrives as a KeyboardInterrupt (bakegen.main), so run_all removes the containers either way.
        outcomes = session.run_all(cases, self.settings.jobs, live, stop_when)
        record.smoked.extend(outcomes)
        record.note_smoke(outcomes)
        report.smoke_summary(outcomes, time.monotonic() - started)
        if self.settings.junit_xml:
            write_atomic(self.settings.junit_xml, report.junit_xml(outcomes))
        if any(o.result == "fail" for o in outcomes):
            if self.gates_push:
                report.progress("bakegen: smoke checks failed; nothing was pushed")
            return EXIT_FAILED
        return EXIT_OK


# -- merge --


@dataclass(frozen=True)
class MergeStep:
    """Publish each target's final tags as one manifest list of its per-platform digests.

    The digests come from this run's builds, or from the metadata files of other runs (`--from`).
    A tag that today lists more platforms than this merge would give it is not replaced unless
    `allow_fewer_platforms`: publishing some platforms must never silently drop the others."""

    plan: BuildPlan
    values: Mapping[str, str]
    sources: tuple[BuiltImage, ...] = ()  # empty: this run's builds
    allow_fewer_platforms: bool = False
    builder: str | None = None

    def groups(self, record: RunRecord) -> list[tuple[str, list[str], list[BuiltImage]]]:
        """(target, final tags, its per-platform images) for every target of the plan that has images."""
        images = list(self.sources) or [b for b in record.built.values() if b.digest]
        out = []
        # One list per tag owner: a platform source's images join its owner's (their tags are the same).
        for owner in dict.fromkeys(t.tag_owner for t in self.plan.targets):
            members = self.plan.tag_members(owner)
            mine = [b for b in images if b.target in {t.name for t in members}]
            tags = self.plan.resolved_tags(members[0], self.values)
            if mine and all(b.unchanged for b in mine):
                # its tags stay; only missing or moved ones are published
                tags = list(dict.fromkeys(tag for t in members for tag in record.stale_tags.get(t.name, [])))
            if mine and tags:
                out.append((owner, tags, mine))
        return out

    def index_annotations(self, target: str) -> dict[str, str]:
        """The index annotations of a target's manifest list: the spec's `index:` level ones and the OCI metadata of `versioning`."""
        mine = next((t for t in self.plan.targets if t.name == target), None)
        return mine.merged_index_annotations(self.values) if mine else {}

    def describe(self, record: RunRecord) -> str:
        if record.built and not self.groups(record):
            return "merge: nothing to publish, every tag already points at its unchanged image"
        lines = []
        for name, tags, images in self.groups(record) or [(t.name, [], []) for t in self.plan.targets]:
            sources = [f"{b.repository}@{b.digest}" for b in images] or ["<the digests built above>"]
            lines.append(shlex.join(buildx.imagetools_create_argv(tags or [name], sources, self.index_annotations(name), self.builder)))
        return "merge:\n    " + "\n    ".join(lines)

    def preview(self, record: RunRecord) -> str:
        return ""

    def run(self, record: RunRecord) -> int:
        groups = self.groups(record)
        if not groups:
            return EXIT_OK
        for name, tags, images in groups:  # every check first: nothing is published when one fails
            have = {p for b in images for p in b.platform.split(",")}
            lacking = [p for t in self.plan.tag_members(name) for p in t.platforms if p not in have]
            if lacking and not self.allow_fewer_platforms:
                report.progress(
                    f"bakegen: {name}: no image for {', '.join(lacking)}; refusing to publish {tags[0]} without them (--allow-fewer-platforms)"
                )
                return EXIT_FAILED
            for tag in tags:
                raw = buildx.imagetools_raw(tag)
                dropped = [p for p in (buildx.index_platforms(raw) if raw else []) if p not in have]
                if dropped and not self.allow_fewer_platforms:
                    report.progress(
                        f"bakegen: {tag} now holds {', '.join(dropped)}, which this merge does not have; refusing to replace it "
                        "(build every platform, or pass --allow-fewer-platforms to replace it anyway)"
                    )
                    return EXIT_FAILED
        rows = [("TARGET", "TAGS", "PLATFORMS", "INDEX DIGEST")]
        for name, tags, images in groups:
            sources = [f"{b.repository}@{b.digest}" for b in images]
            buildx.imagetools_create(tags, sources, self.index_annotations(name), builder=self.builder)
            raw = buildx.imagetools_raw(tags[0]) or b""
            digest = "sha256:" + hashlib.sha256(raw).hexdigest()
            record.merged.append({"target": name, "name": images[0].repository, "digest": digest, "tags": tags})
            rows.append((name, report.short_tags(tags), ",".join(buildx.index_platforms(raw)), digest))
        print(report.format_table(rows))
        return EXIT_OK


BUILT = "built:"
_BUILD = BuiltImage("", "", "", "", ())  # what an image not found unchanged looks like to to_build


def _unchanged(record: RunRecord, key: str) -> bool:
    built = record.built.get(key)
    return bool(built and built.unchanged)
