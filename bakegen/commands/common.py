"""What several commands share: the spec and target selection, and the plan's lookups worded for the CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from bakegen import report
from bakegen.errors import BakegenError
from bakegen.model import OCI_PREFIX, BuildPlan, NoImageReference, PlanLookupError, UnknownSelection, UnknownVariable, Versioning
from bakegen.pipeline import Compiled, compile_spec
from bakegen.slices import only
from bakegen.template import Text


@dataclass(frozen=True)
class SpecOptions:
    """-f SPEC and --strict."""

    path: str
    strict: bool = False
    versioned: bool = False  # compute the spec's `versioning` values from git (plan, bake, merge, smoke, version; never render)


# Shorthand flags for the ARGs users touch most: flag -> Dockerfile ARG.
SHORTHAND_ARGS = {"--cuda-version": "CUDA_VERSION", "--cuda-arch": "CUDA_DOCKER_ARCH", "--musa-version": "MUSA_VERSION"}


@dataclass(frozen=True)
class Selection:
    """Which targets, the bake variables set with `--var`, and the ARG values of the shorthand flags."""

    names: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()
    args: tuple[tuple[str, str], ...] = ()  # (ARG, value) from --cuda-version and its kin


def load(spec: SpecOptions, *, quiet: bool = False) -> Compiled:
    """The compiled spec; its warnings printed once (unless quiet)."""
    compiled = compile_spec(spec.path, strict=spec.strict)
    if not quiet:
        report.diagnostics(compiled.warnings)
    versioning = compiled.plan.versioning
    if spec.versioned and versioning is not None:
        info = version_info(versioning, compiled.spec.directory, os.environ)
        if not quiet:
            for note in info.notes:
                report.progress(f"note: version {info.version}: {note}")
        compiled = replace(compiled, plan=replace(compiled.plan, computed=tuple(info.variables(versioning).items())))
    return compiled


def selected(compiled: Compiled, selection: Selection, environ: Mapping[str, str]) -> tuple[BuildPlan, dict[str, str]]:
    """The plan narrowed to the selected targets, and the variable values bake will see."""
    plan = compiled.plan
    with cli_words(plan):
        narrowed = only(plan, plan.select(selection.names))
        overrides = {**shorthand_variables(narrowed, selection.args), **dict(selection.variables)}
        values = plan.values(overrides, environ)
    warn_unread_environment(narrowed, environ)
    return with_metadata(narrowed, values), values


def with_metadata(plan: BuildPlan, values: Mapping[str, str]) -> BuildPlan:
    """The plan with every templated label and annotation resolved to literal text with these values: what one
    run builds. (A rendered bake file keeps them as ${VARIABLE}s; a value that comes out empty is left out.)"""
    targets = tuple(
        replace(
            t,
            labels=tuple(t.resolved_labels(values).items()),
            annotations=tuple(t.resolved_annotations(values)),
            label_templates=(),
            annotation_templates=(),
            index_annotations=tuple((key, (Text(text),)) for key, text in t.merged_index_annotations(values).items()),
        )
        for t in plan.targets
    )
    return replace(plan, targets=targets)


@dataclass(frozen=True)
class VersionInfo:
    """What `bakegen version` prints: the version and the OCI metadata of HEAD, and how they were found."""

    version: str
    aliases: tuple[str, ...]
    how: str  # how the version was determined
    metadata: tuple[tuple[str, str], ...]  # org.opencontainers.image.* -> value; unknown facts left out
    notes: tuple[str, ...] = ()

    def fact(self, name: str) -> str:
        """created, revision, version or source ("" when unknown)."""
        return dict(self.metadata).get(OCI_PREFIX + name, "")

    def variables(self, versioning: Versioning) -> dict[str, str]:
        """The bake variables `versioning` declares, with these values."""
        found = {versioning.fact_variable(fact): self.fact(fact) or (self.version if fact == "version" else "") for fact in FACTS}
        aliases = [*self.aliases, "", ""]
        return found | dict(zip(versioning.alias_variables(), aliases, strict=False))

    def as_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "aliases": list(self.aliases),
            "revision": self.fact("revision") or None,
            "created": self.fact("created") or None,
            "source": self.fact("source") or None,
            "determined-by": self.how,
            "labels": dict(self.metadata),
            "notes": list(self.notes),
        }


FACTS = ("version", "created", "revision", "source")


def version_info(versioning: Versioning, directory: Path, environ: Mapping[str, str], *, explicit: str | None = None) -> VersionInfo:
    """The version of the checkout at `directory` by the spec's scheme. An explicit version (--var, else a non-empty
    environment variable) wins; without git, or in a shallow clone, the documented fallback with a note."""
    explicit = explicit or environ.get(versioning.variable) or None
    from bakegen.gitinfo import VersionScheme, compute_version, missing_git_reason, oci_metadata, read_git_facts, source_date_epoch

    facts = read_git_facts(directory, environ, default_branch=versioning.default_branch)
    scheme = VersionScheme(versioning.scheme, strip_v=versioning.strip_v, semver_aliases=versioning.semver_aliases)
    result = compute_version(facts, scheme, explicit=explicit)
    notes = list(result.notes)
    if facts is None and not explicit:
        notes = [f"{missing_git_reason(directory, environ) or 'no git'}; using {result.version!r}: set {versioning.variable} to choose one"]
    notes += source_date_epoch(environ)[1]
    metadata = oci_metadata(facts, result.version, source_url=versioning.source_url, env=environ)
    return VersionInfo(result.version, result.aliases, result.source, tuple(sorted(metadata.items())), tuple(notes))


def shorthand_variables(plan: BuildPlan, args: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The two-CUDA rule: `--cuda-version V` sets the one bake variable that feeds the ARG CUDA_VERSION
    in the selected targets, whatever its name. When several do (CUDA 12 and 13 side by side, each on
    its own variable) it is refused, naming them: one value for both would build a wrong image."""
    overrides: dict[str, str] = {}
    for arg, value in args:
        flag = next((f for f, a in SHORTHAND_ARGS.items() if a == arg), arg)
        feeding = plan.variables_feeding(arg)
        if not feeding:
            raise BakegenError(f"{flag}: none of the selected targets has the ARG {arg}; nothing would use the value")
        if len(feeding) > 1:
            sources = ", ".join(f"{name} ({', '.join(variants)})" for name, variants in feeding.items())
            raise BakegenError(
                f"{flag}: the ARG {arg} comes from {len(feeding)} bake variables in the selected targets: {sources}; "
                f"select one variant, or set each with --var NAME=VALUE"
            )
        overrides[next(iter(feeding))] = value
    return overrides


def warn_unread_environment(plan: BuildPlan, environ: Mapping[str, str]) -> None:
    """An environment variable named like an ARG of the selected targets, where no variable of that name feeds
    that ARG in them, changes nothing they build (for bakegen or for buildx): say so, and which variables to set."""
    for arg in sorted({name for t in plan.targets for name, _ in t.args}):
        feeding = plan.variables_feeding(arg)
        if arg in environ and feeding and arg not in feeding:
            report.progress(
                f"warning: {arg} is set in the environment, but no selected target reads a bake variable of that name; "
                f"the ARG {arg} comes from {', '.join(feeding)}"
            )


@contextmanager
def cli_words(plan: BuildPlan) -> Iterator[None]:
    """Turns the plan's lookup errors into messages that name the CLI's options."""
    try:
        yield
    except PlanLookupError as exc:
        raise BakegenError(worded(exc, plan.spec_path)) from None


def worded(exc: PlanLookupError, spec_path: str) -> str:
    if isinstance(exc, UnknownVariable):
        return f"--var {exc.name}: not a variable of this spec (known: {', '.join(exc.known)})"
    if isinstance(exc, UnknownSelection):
        return f"{exc.name!r} is neither a target nor a group of {spec_path} (groups: {', '.join(exc.groups)}; run `bakegen plan` to list targets)"
    if isinstance(exc, NoImageReference):
        return f"{exc.target}: every tag is empty with these values, so the image has no name; set {' or '.join(exc.variables)} (--var NAME=VALUE)"
    return str(exc)
