"""`bakegen smoke`: run the spec's checks against the locally built images."""

from __future__ import annotations

import argparse
import signal
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from bakegen import model
from bakegen.errors import EXIT_FAILED, EXIT_OK, BakegenError
from bakegen.model import BuildPlan
from bakegen.output import write_atomic
from bakegen.pipeline import compile_spec
from bakegen.runners.smoke import CaseOutcome, ImageChecks, SmokeSession, cases_for
from bakegen.tables import format_table


def run(args: argparse.Namespace) -> int:
    from bakegen.commands.bake import variable_overrides

    compiled = compile_spec(args.file, strict=args.strict)
    plan = model.only(compiled.plan, compiled.plan.select(args.names))
    return check_plan(plan, plan.values(variable_overrides(args, plan)), args)


def images_of(plan: BuildPlan, values: dict[str, str]) -> list[ImageChecks]:
    """Each target's first tag: the image `bakegen bake --load` leaves in the local engine."""
    return [(t.name, plan.resolved_tags(t, values)[0], t.checks) for t in plan.targets if t.checks]


def check_plan(plan: BuildPlan, values: dict[str, str], args: argparse.Namespace, images: list[ImageChecks] | None = None) -> int:
    cases = cases_for(images if images is not None else images_of(plan, values))
    if not cases:
        raise BakegenError(f"{plan.spec_path}: the selected targets declare no checks (see `checks` in the spec)")
    session = SmokeSession(values, gpus=getattr(args, "gpus", None))
    print(f"==> smoke: {len(cases)} checks, {args.jobs} at a time (session {session.id})", file=sys.stderr)

    def report(outcome: CaseOutcome) -> None:
        mark = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[outcome.result]
        why = f"  {outcome.message}" if outcome.message and outcome.result != "fail" else ""
        print(f"{mark}  {outcome.case.target}  {outcome.case.check.name}  {outcome.seconds:.1f}s{why}", file=sys.stderr, flush=True)

    with _sigterm_as_interrupt():
        outcomes = session.run_all(cases, args.jobs, report)

    rows = [("TARGET", "CHECK", "RESULT", "SECONDS")]
    rows += [(o.case.target, o.case.check.name, o.result.upper(), f"{o.seconds:.1f}") for o in outcomes]
    print(format_table(rows))
    failures = [o for o in outcomes if o.result == "fail"]
    for outcome in failures:
        print(f"\n--- {outcome.case.target} / {outcome.case.check.name} ({outcome.case.image}) ---", file=sys.stderr)
        print(f"  {outcome.message}", file=sys.stderr)
        if outcome.details:
            print("  last lines of the container log:", file=sys.stderr)
            for line in outcome.details.splitlines():
                print(f"  | {line}", file=sys.stderr)
    if getattr(args, "junit_xml", None):
        write_atomic(Path(args.junit_xml), junit_xml(outcomes))
    counts = {r: sum(o.result == r for o in outcomes) for r in ("pass", "fail", "skip")}
    print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


def junit_xml(outcomes: list[CaseOutcome]) -> str:
    suite = ET.Element(
        "testsuite",
        name="bakegen smoke",
        tests=str(len(outcomes)),
        failures=str(sum(o.result == "fail" for o in outcomes)),
        skipped=str(sum(o.result == "skip" for o in outcomes)),
        time=f"{sum(o.seconds for o in outcomes):.3f}",
    )
    for outcome in outcomes:
        case = ET.SubElement(suite, "testcase", classname=outcome.case.target, name=outcome.case.check.name, time=f"{outcome.seconds:.3f}")
        if outcome.result == "fail":
            failure = ET.SubElement(case, "failure", message=outcome.message)
            failure.text = outcome.details or outcome.message
        elif outcome.result == "skip":
            ET.SubElement(case, "skipped", message=outcome.message)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


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
