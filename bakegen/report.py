"""Everything bakegen prints about a run: tables, warnings, smoke results, build failures, JUnit XML.

Data comes in (plans, outcomes); text goes out. Results go to stdout, progress and problems to stderr.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bakegen.errors import Diagnostic
from bakegen.model import BuildPlan
from bakegen.progress import closing_line, paint
from bakegen.template import resolve

if TYPE_CHECKING:  # only types: the render path (report's diagnostics) must not load the runners
    from bakegen.runners.buildx import BakeOutcome
    from bakegen.runners.smoke import CaseOutcome, SmokeCase


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


@dataclass
class _OutputState:
    """How this command prints (set once by the command, from -q and the terminal): one per process."""

    quiet: bool = False
    color: bool = False
    seen: set[str] = field(default_factory=set)


_state = _OutputState()


def configure(*, quiet: bool = False, color: bool = False) -> None:
    """Start a command's output: -q, colour, and a fresh memory of the warnings printed."""
    global _state
    _state = _OutputState(quiet=quiet, color=color)


def color() -> bool:
    return _state.color


_NOTES = ("note:", "warning:")
_PROBLEMS = ("bakegen:", "error:", "error ")


def progress(text: str) -> None:
    """A progress line on stderr. A note or warning is printed once per command; with -q only problems are."""
    if text.startswith(_NOTES):
        if _state.quiet or text in _state.seen:
            return
        _state.seen.add(text)
    elif _state.quiet and not text.startswith(_PROBLEMS):
        return
    print(text, file=sys.stderr, flush=True)


def diagnostics(found: Iterable[Diagnostic]) -> None:
    """The spec's warnings: each distinct one once per command, none with -q."""
    for diagnostic in found:
        text = str(diagnostic)
        if _state.quiet or text in _state.seen:
            continue
        _state.seen.add(text)
        print(text, file=sys.stderr)


def result(text: str) -> None:
    """A result line (a smoke check, a closing line): printed in every mode, on stderr beside the progress."""
    print(text, file=sys.stderr, flush=True)


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
_MARK_STYLES = {"pass": "green", "fail": "red", "skip": "yellow"}


@dataclass(frozen=True)
class SmokeColumns:
    """Widths of the smoke result columns, from every case before the first runs: the lines align as they come."""

    target: int = 0
    platform: int = 0
    image: int = 0
    check: int = 0

    @classmethod
    def of(cls, cases: Iterable[SmokeCase]) -> SmokeColumns:
        listed = list(cases)
        if not listed:
            return cls()
        return cls(
            max(len(c.target) for c in listed),
            max(len(c.platform) for c in listed),
            max(len(short_image(c.image)) for c in listed),
            max(len(c.check.name) for c in listed),
        )


def smoke_line(outcome: CaseOutcome, columns: SmokeColumns = SmokeColumns()) -> str:
    case = outcome.case
    why = f"  {outcome.message}" if outcome.message and outcome.result != "fail" else ""
    mark = paint(_MARKS[outcome.result], _MARK_STYLES[outcome.result], _state.color)
    cells = (case.target.ljust(columns.target), case.platform.ljust(columns.platform),
             short_image(case.image).ljust(columns.image), case.check.name.ljust(columns.check))  # fmt: skip
    return f"{mark}  {'  '.join(cells)}  {outcome.seconds:5.1f}s{why}"


def short_image(reference: str) -> str:
    """An image ID or REPO@sha256:... shortened to 12 hex digits; tags as they are."""
    name, sep, digest = reference.rpartition("sha256:")
    return f"{name}{sep}{digest[:12]}" if sep else reference


def smoke_summary(outcomes: Sequence[CaseOutcome], seconds: float | None = None) -> None:
    """After the result lines (each printed once, as it came): the failures in full, then the closing line."""
    for outcome in (o for o in outcomes if o.result == "fail"):
        print(f"\n--- {outcome.case.target} / {outcome.case.check.name} ({outcome.case.image}) ---", file=sys.stderr)
        print(f"  {outcome.message}", file=sys.stderr)
        if outcome.details:
            print("  last lines of the container log:", file=sys.stderr)
            for line in outcome.details.splitlines():
                print(f"  | {line}", file=sys.stderr)
    counts = {r: sum(o.result == r for o in outcomes) for r in ("pass", "fail", "skip")}
    total = seconds if seconds is not None else sum(o.seconds for o in outcomes)
    line = closing_line([("passed", counts["pass"]), ("failed", counts["fail"]), ("skipped", counts["skip"])], total)
    result(paint(line, "red" if counts["fail"] else "green", _state.color))


def smoke_json(outcomes: Sequence[CaseOutcome]) -> list[dict[str, object]]:
    """Every check for --json: name (TARGET::CHECK), target, check, status, seconds, image (the ID checked), platform, message."""
    return [
        {
            "name": f"{o.case.target}::{o.case.check.name}",
            "target": o.case.target,
            "check": o.case.check.name,
            "status": {"pass": "passed", "fail": "failed", "skip": "skipped"}[o.result],
            "seconds": round(o.seconds, 3),
            "image": o.case.image,
            "platform": o.case.platform,
            "message": o.message,
        }
        for o in outcomes
    ]


def bake_closing_line(built: int, failed: int, seconds: float, unfinished: int = 0) -> str:
    """`12 built, 1 failed in 42.1 s`; targets of a failed bake that did not fail themselves are counted as not built."""
    line = closing_line([("built", built), ("failed", failed), *([("not built", unfinished)] if unfinished else [])], seconds)
    return paint(line, "red" if failed else "green", _state.color)


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
