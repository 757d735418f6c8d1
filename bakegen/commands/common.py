"""What several commands share: the spec and target selection, and the plan's lookups worded for the CLI."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from bakegen import report
from bakegen.errors import BakegenError
from bakegen.model import BuildPlan, NoImageReference, PlanLookupError, UnknownSelection, UnknownVariable
from bakegen.pipeline import Compiled, compile_spec
from bakegen.slices import only


@dataclass(frozen=True)
class SpecOptions:
    """-f SPEC and --strict."""

    path: str
    strict: bool = False


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
    return compiled


def selected(compiled: Compiled, selection: Selection, environ: Mapping[str, str]) -> tuple[BuildPlan, dict[str, str]]:
    """The plan narrowed to the selected targets, and the variable values bake will see."""
    plan = compiled.plan
    with cli_words(plan):
        narrowed = only(plan, plan.select(selection.names))
        overrides = {**shorthand_variables(narrowed, selection.args), **dict(selection.variables)}
        values = plan.values(overrides, environ)
    warn_unread_environment(narrowed, environ)
    return narrowed, values


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
    """An environment variable named like an ARG that no bake variable of that name feeds is not read
    (by bakegen or by buildx): say so, and which variables to set, instead of ignoring it silently."""
    declared = {v.name for v in plan.variables}
    args = sorted({name for t in plan.targets for name, _ in t.args} - declared)
    for arg in (a for a in args if a in environ):
        feeding = ", ".join(plan.variables_feeding(arg))
        if feeding:
            report.progress(
                f"warning: {arg} is set in the environment, but no bake variable has that name; the ARG {arg} comes from {feeding}"
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
