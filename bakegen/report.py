"""Everything bakegen prints about a run: tables, warnings, smoke results, build failures, JUnit XML.

Data comes in (plans, outcomes); text goes out. Results go to stdout, progress and problems to stderr.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence

from bakegen.errors import Diagnostic
from bakegen.model import BuildPlan
from bakegen.runners.buildx import BakeOutcome
from bakegen.runners.smoke import CaseOutcome
from bakegen.template import resolve


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def diagnostics(found: Iterable[Diagnostic]) -> None:
    for diagnostic in found:
        print(diagnostic, file=sys.stderr)


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value, unit = float(size) / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def short_tags(tags: Iterable[str]) -> str:
    """Tags without the repository: `light-cuda light-cuda-b4567`."""
    return " ".join(t.rsplit(":", 1)[-1] for t in tags)


# -- plan --


def plan_table(plan: BuildPlan, values: dict[str, str], names: Sequence[str]) -> str:
    rows = [("TARGET", "DOCKERFILE", "STAGE", "PLATFORMS", "TAGS", "ARGS")]
    for target in plan.select(names):
        args = " ".join(f"{name}={resolve(v, values)}" for name, v in target.args)
        rows.append(
            (
                target.name,
                target.dockerfile,
                target.bake_target,
                ",".join(target.platforms),
                short_tags(plan.resolved_tags(target, values)),
                args,
            )
        )
    lines = format_table(rows).splitlines()
    lines.append(
        f"\nrepository: {values[plan.repository_variable]}   variables: "
        + ", ".join(f"{v.name}={values[v.name]!r}" for v in plan.variables if v.name != plan.repository_variable)
    )
    return "\n".join(line.rstrip() for line in lines)


# -- bake --

BAKE_HEADER = ("TARGET", "TAGS", "PLATFORMS", "DIGEST", "SIZE", "SECONDS")


def build_failure(outcome: BakeOutcome, label: str) -> None:
    failed = outcome.failed_targets
    print(f"\nbakegen: build failed ({label}): {', '.join(failed) or 'bake'}", file=sys.stderr)
    for name in failed:
        print(f"--- last lines of {name} ---", file=sys.stderr)
        for line in list(outcome.targets[name].lines)[-10:]:
            print(f"  {line}", file=sys.stderr)
    print(f"error: {outcome.error}", file=sys.stderr)


def dropped_annotations(dropped: Sequence[str], *, pushed: bool) -> None:
    """One warning line naming the annotations a docker-driver run loses."""
    where = (
        "bakegen writes manifest and index annotations when it pushes, but has no place for descriptor ones"
        if pushed
        else "its image store keeps none; with --push bakegen writes the manifest and index ones"
    )
    print(f"warning: the docker driver drops these annotations: {', '.join(dropped)} ({where})", file=sys.stderr)


def digest_cell(digest: str, local: bool) -> str:
    """A digest says what kind it is: `id:` for an image ID in the local engine, `sha256:` for a registry digest."""
    if not digest.startswith("sha256:"):
        return "-"
    return ("id:" if local else "sha256:") + digest.removeprefix("sha256:")[:12]


# -- smoke --

_MARKS = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}


def smoke_line(outcome: CaseOutcome) -> str:
    case = outcome.case
    why = f"  {outcome.message}" if outcome.message and outcome.result != "fail" else ""
    return f"{_MARKS[outcome.result]}  {case.target}  {case.platform}  {short_image(case.image)}  {case.check.name}  {outcome.seconds:.1f}s{why}"


def short_image(reference: str) -> str:
    """An image ID or REPO@sha256:... shortened to 12 hex digits; tags as they are."""
    name, sep, digest = reference.rpartition("sha256:")
    return f"{name}{sep}{digest[:12]}" if sep else reference


def smoke_summary(outcomes: Sequence[CaseOutcome]) -> None:
    rows = [("TARGET", "CHECK", "RESULT", "SECONDS")]
    rows += [(o.case.target, o.case.check.name, o.result.upper(), f"{o.seconds:.1f}") for o in outcomes]
    print(format_table(rows))
    for outcome in (o for o in outcomes if o.result == "fail"):
        print(f"\n--- {outcome.case.target} / {outcome.case.check.name} ({outcome.case.image}) ---", file=sys.stderr)
        print(f"  {outcome.message}", file=sys.stderr)
        if outcome.details:
            print("  last lines of the container log:", file=sys.stderr)
            for line in outcome.details.splitlines():
                print(f"  | {line}", file=sys.stderr)
    counts = {r: sum(o.result == r for o in outcomes) for r in ("pass", "fail", "skip")}
    print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped", file=sys.stderr)


def junit_xml(outcomes: Sequence[CaseOutcome]) -> str:
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
