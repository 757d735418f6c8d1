"""Skip targets whose inputs did not change: the inputs digest as an image label, compared with the registry's.

Every image `bakegen bake --push` builds carries the label `org.bakegen.inputs.digest` (set at bake time with
`--set TARGET.labels...`, never in the rendered bake file, so `plan --json` stays what `buildx bake --print`
says): the sha256 of what its build reads (`bakegen.inputs`), for its platform. Unless `--force`,
`UnchangedStep` first reads the image published under each target's first tag, for each
platform, from the registry (configs only, nothing pulled); where its label equals the digest this run would
give, that target and platform is not built, not smoke-tested and not pushed. The summary says `unchanged`
and the published digest stands in for the build's, so a later merge (or `bakegen merge --from`) still
publishes every platform. A target whose platforms are all unchanged keeps its tags; only its tags that do
not point at that image yet (a new `VERSION` tag, an alias) are published from it.

A target built for several platforms in one build (a `docker-container` builder) carries one label for all of
them: the digest of its per-platform digests, so it is skipped only when no platform changed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bakegen import report
from bakegen.errors import EXIT_FAILED, EXIT_OK, BakegenError
from bakegen.inputs import INPUTS_LABEL, base_image_references, canonical_json, context_sources, inputs_digest
from bakegen.model import BuildPlan, Target
from bakegen.runners import baseimages, buildx
from bakegen.slices import Slice
from bakegen.steps import BuiltImage, RunRecord
from bakegen.template import resolve

# Registry queries run side by side: each is a round trip of a few hundred ms.
_LOOKUP_THREADS = 4


def matching_overrides(target: str, overrides: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The `--set PATTERN.KEY=VALUE` overrides bake applies to `target`, as (KEY, VALUE), in order."""
    out = []
    for key, value in overrides:
        pattern, _, name = key.partition(".")
        if fnmatch.fnmatchcase(target, pattern):
            out.append((name, value))
    return out


def build_args(target: Target, values: Mapping[str, str], overrides: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """The build ARGs bake passes for `target`: the spec's, resolved, then `--set ...args.NAME=VALUE`."""
    args = {name: resolve(template, values) for name, template in target.args}
    for name, value in matching_overrides(target.name, overrides):
        if name.startswith("args."):
            args[name.removeprefix("args.")] = value
    return args


def build_settings(target: Target, overrides: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """What else shapes the image besides the files, args and base images: the spec's labels and
    annotations, and every other `--set` override that applies to the target (a label, a Dockerfile...)."""
    settings = {f"label.{key}": value for key, value in target.labels}
    settings.update({f"annotation.{index}": text for index, text in enumerate(target.annotations)})
    for name, value in matching_overrides(target.name, overrides):
        if not name.startswith("args.") and name != f"labels.{INPUTS_LABEL}":
            settings[f"set.{name}"] = value
    return settings


@dataclass
class BaseImageIdentities:
    """Base image identities for the run, each (references, platform) resolved once."""

    local_engine: bool = True
    resolved: dict[tuple[tuple[str, ...], str], dict[str, str]] = field(default_factory=dict)

    def __call__(self, references: list[str], platform: str) -> dict[str, str]:
        key = (tuple(references), platform)
        if key not in self.resolved:
            self.resolved[key] = baseimages.resolve_base_images(references, platform, local_engine=self.local_engine)
        return self.resolved[key]


def target_inputs_digest(
    target: Target,
    platform: str,
    directory: Path,
    values: Mapping[str, str],
    overrides: Sequence[tuple[str, str]],
    identities: Callable[[list[str], str], dict[str, str]],
) -> str:
    """The inputs digest of `target` built for `platform` (see `bakegen.inputs`)."""
    context = directory / target.context
    dockerfile = context / target.dockerfile
    args = build_args(target, values, overrides)
    try:
        text = dockerfile.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise BakegenError(f"{dockerfile}: cannot read it: {exc.strerror}") from None
    references = base_image_references(text, target.bake_target, args, platform=platform, source=str(dockerfile))
    sources = context_sources(text, target.bake_target, args, platform=platform, source=str(dockerfile))
    return inputs_digest(
        dockerfile=dockerfile,
        context=context,
        stage=target.bake_target,
        args=args,
        platform=platform,
        base_images=identities(references, platform),
        extra=build_settings(target, overrides),
        sources=sources,
    )


def label_value(per_platform: Mapping[str, str]) -> str:
    """The label of an image built for these platforms: the platform's digest, or for a build of several
    platforms at once, the digest of all of them (one label is all such a build can carry)."""
    if len(per_platform) == 1:
        return next(iter(per_platform.values()))
    return hashlib.sha256(canonical_json(dict(per_platform))).hexdigest()


@dataclass(frozen=True)
class UnchangedStep:
    """Compute every image's inputs digest (the label BuildStep sets) and, with `look_up`, mark as unchanged
    the images whose published counterpart already carries it (BuildStep, PushStep, SmokeStep and
    MergeStep leave those out)."""

    slices: tuple[Slice, ...]
    several: bool
    values: Mapping[str, str]
    directory: Path
    overrides: tuple[tuple[str, str], ...] = ()
    look_up: bool = False  # --push without --force
    local_engine: bool = True

    def describe(self, record: RunRecord) -> str:
        what = f"inputs digest of every image (label {INPUTS_LABEL})"
        return what + ("; skip images published with the same digest (--force builds them all)" if self.look_up else "")

    def preview(self, record: RunRecord) -> str:
        return ""

    def run(self, record: RunRecord) -> int:
        started = time.monotonic()
        identities = BaseImageIdentities(self.local_engine)
        for part in self.slices:
            for target in part.plan.targets:
                per_platform = {
                    platform: target_inputs_digest(target, platform, self.directory, self.values, self.overrides, identities)
                    for platform in target.platforms
                }
                record.inputs[part.key(target.name, self.several)] = label_value(per_platform)
        if not self.look_up:
            return EXIT_OK
        unchanged = self.find_unchanged(record)
        total = sum(len(part.plan.targets) for part in self.slices)
        report.progress(
            f"inputs: {len(unchanged)} of {total} images unchanged since they were published, "
            f"{total - len(unchanged)} to build ({time.monotonic() - started:.1f} s)"
        )
        return EXIT_OK

    def find_unchanged(self, record: RunRecord) -> list[str]:
        """Mark the images whose published counterpart carries this run's digest; returns their keys."""
        first_tags: dict[str, list[str]] = {}
        for part in self.slices:
            for target in part.plan.targets:
                first_tags.setdefault(target.name, part.plan.resolved_tags(target, self.values))
        repository = self.values[self.slices[0].plan.repository_variable] if self.slices else ""
        wanted = sorted({tags[0] for tags in first_tags.values() if tags})
        with ThreadPoolExecutor(max_workers=_LOOKUP_THREADS) as pool:
            published = dict(zip(wanted, pool.map(lambda ref: _published(ref), wanted), strict=True))
        found: list[str] = []
        for part in self.slices:
            for target in part.plan.targets:
                key = part.key(target.name, self.several)
                tags = first_tags[target.name]
                images = published.get(tags[0], {}) if tags else {}
                matches = [images.get(baseimages.parse_platform(platform)) for platform in target.platforms]
                if not all(image and image.labels.get(INPUTS_LABEL) == record.inputs[key] for image in matches):
                    continue
                first = matches[0]
                assert first is not None  # every match was checked above
                digest = first.digest if len(matches) == 1 else first.index_digest
                record.built[key] = BuiltImage(
                    key, target.name, ",".join(target.platforms), repository, tuple(tags), digest=digest, unchanged=first.index_digest
                )
                record.rows[key] = (
                    target.name, report.short_tags(tags), ",".join(target.platforms), report.digest_cell(digest, False), "-", "unchanged",
                )  # fmt: skip
                found.append(key)
        self.find_stale_tags(record, first_tags)
        return found

    def find_stale_tags(self, record: RunRecord, tags_of: Mapping[str, list[str]]) -> None:
        """For each target whose images are all unchanged: its tags that do not point at the published index."""
        by_target: dict[str, list[BuiltImage]] = {}
        for part in self.slices:
            for target in part.plan.targets:
                by_target.setdefault(target.name, []).append(record.built.get(part.key(target.name, self.several)) or _NOT_UNCHANGED)
        checks = [
            (name, tag, images[0].unchanged)
            for name, images in by_target.items()
            if all(image.unchanged for image in images)
            for tag in tags_of[name][1:]
        ]
        with ThreadPoolExecutor(max_workers=_LOOKUP_THREADS) as pool:
            current = list(pool.map(lambda check: buildx.imagetools_raw(check[1]), checks))
        for name in by_target:
            if all(image.unchanged for image in by_target[name]):
                record.stale_tags[name] = []
        for (name, tag, index_digest), raw in zip(checks, current, strict=True):
            if raw is None or "sha256:" + hashlib.sha256(raw).hexdigest() != index_digest:
                record.stale_tags[name].append(tag)


_NOT_UNCHANGED = BuiltImage("", "", "", "", ())


def _published(reference: str) -> dict[tuple[str, str, str], baseimages.PublishedImage]:
    repository, _, tag = reference.rpartition(":")
    return baseimages.published_images(repository, tag)


# -- sizes: what each pushed image weighs, against the image published under its tag, and its budget --------------


def manifest_sizes(repository: str, digest: str) -> dict[str, int]:
    """Compressed size (config + layers, as the registry manifest lists them) of `repository@digest`, by
    platform ("" for a single manifest); an index gives one entry per platform. Nothing is pulled."""
    raw = buildx.imagetools_raw(f"{repository}@{digest}")
    if raw is None:
        return {}
    document = json.loads(raw)
    if "manifests" not in document:
        return {"": int(document["config"]["size"]) + sum(int(layer["size"]) for layer in document.get("layers", []))}
    sizes: dict[str, int] = {}
    for entry in document["manifests"]:
        described = entry.get("platform") or {}
        if described.get("os") in (None, "unknown"):
            continue  # an attestation manifest
        platform = "/".join(part for part in (described["os"], described["architecture"], described.get("variant", "")) if part)
        for size in manifest_sizes(repository, str(entry["digest"])).values():
            sizes[platform] = size
    return sizes


def size_change(size: int, before: int | None) -> str:
    """`41.2 MiB (+1.3 MiB)`, `(new)` when nothing is published under the tag, `(same)` when equal."""
    if before is None:
        return f"{report.human_size(size)} (new)"
    if size == before:
        return f"{report.human_size(size)} (same)"
    sign = "+" if size > before else "-"
    return f"{report.human_size(size)} ({sign}{report.human_size(abs(size - before))})"


@dataclass(frozen=True)
class SizeStep:
    """With --push, after every image went up by digest and before any tag is published: each image's
    compressed size, and its change against the image its first tag points to now, go into the summary's
    SIZE column; an image over its target's size budget fails the run, so nothing is published."""

    plan: BuildPlan
    values: Mapping[str, str]

    def describe(self, record: RunRecord) -> str:
        budgets = sum(1 for target in self.plan.targets if target.size_budget)
        return f"sizes: compressed size of every pushed image against its published tag; {budgets} targets with a size budget"

    def preview(self, record: RunRecord) -> str:
        return ""

    def run(self, record: RunRecord) -> int:
        by_name = {target.name: target for target in self.plan.targets}
        images = [image for image in record.built.values() if image.digest and image.target in by_name]
        first_tags = {image.target: image.tags[0] for image in images if image.tags}
        with ThreadPoolExecutor(max_workers=_LOOKUP_THREADS) as pool:
            published = dict(zip(first_tags.values(), pool.map(_published, first_tags.values()), strict=True))
            measured = list(pool.map(lambda image: self.measure(image, published.get(first_tags.get(image.target, ""), {})), images))
        over: list[str] = []
        for image, sizes in zip(images, measured, strict=True):
            row = record.rows.get(image.key)
            if row and sizes:
                record.rows[image.key] = (*row[:4], "  ".join(size_change(size, before) for _, size, before in sizes), *row[5:])
            budget = by_name[image.target].size_budget
            for platform, size, _ in sizes:
                if budget is not None and size > budget:
                    over.append(
                        f"{image.target} ({platform}): {report.human_size(size)} ({size} bytes, compressed) is over its size budget of "
                        f"{report.human_size(budget)} ({budget} bytes)"
                    )
        if over:
            report.progress("bakegen: over the size budget; no tag was published:\n  " + "\n  ".join(over))
            return EXIT_FAILED
        return EXIT_OK

    def measure(
        self, image: BuiltImage, published: Mapping[tuple[str, str, str], baseimages.PublishedImage]
    ) -> list[tuple[str, int, int | None]]:
        """(platform, compressed size, size of the image published for that platform under the first tag, or None)."""
        sizes = manifest_sizes(image.repository, image.digest)
        out: list[tuple[str, int, int | None]] = []
        for platform, size in sizes.items():
            platform = platform or image.platform
            old = published.get(baseimages.parse_platform(platform))
            if old is None:
                out.append((platform, size, None))
            elif old.digest == image.digest:
                out.append((platform, size, size))
            else:
                out.append((platform, size, manifest_sizes(image.repository, old.digest).get("", None)))
        return out
