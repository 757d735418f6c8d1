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


@dataclass(frozen=True)
class Selection:
    """Which targets, and the bake variables set on the command line (`--var`, and the shorthand flags)."""

    names: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()


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
        values = plan.values(dict(selection.variables), environ)
    return narrowed, values


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
