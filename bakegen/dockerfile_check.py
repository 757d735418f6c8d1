"""Checks of a plan against the files it names: Dockerfiles, their stages and ARGs.

Kept apart from the planner because these read the file system; the model and planner are pure.
"""

from __future__ import annotations

from pathlib import Path

from bakegen.dockerfile import DockerfileInfo, parse_dockerfile
from bakegen.errors import Diagnostic
from bakegen.model import BuildPlan
from bakegen.spec import Spec


def dockerfile_problems(spec: Spec, plan: BuildPlan) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    parsed: dict[str, DockerfileInfo | None] = {}
    missing: list[str] = []
    consumed: dict[tuple[str, str, str, str], bool] = {}
    for target in plan.targets:
        owner: tuple[str, ...] = ("variants", target.variant) + (("platform-sources", target.source) if target.source else ())
        vpath = (*owner, "dockerfile")
        if target.dockerfile not in parsed:
            path = Path(spec.directory, target.context, target.dockerfile)
            parsed[target.dockerfile] = parse_dockerfile(path) if path.is_file() else None
            if parsed[target.dockerfile] is None:
                missing.append(target.dockerfile)
        info = parsed[target.dockerfile]
        if info is None:
            continue
        if target.bake_target.lower() not in info.stages:
            stages = ", ".join(info.stages) or "no named stages"
            problems.append(spec.diagnostic(vpath, f"{target.dockerfile} has no stage {target.bake_target!r} (it defines: {stages})"))
            continue  # with no such stage, every ARG would look unused
        for name, _ in target.args:
            # An arg is given to every stage of a variant; it is unused only if none of them reads it.
            key = (target.variant, target.source, target.dockerfile, name)
            consumed[key] = consumed.get(key, False) or info.declares(target.bake_target, name)
    for (variant, source, dockerfile, name), used in consumed.items():
        if not used:
            # The innermost place the arg is given: the platform source, the variant, the top level.
            candidates: list[tuple[str, ...]] = [("variants", variant, "args", name), ("args", name)]
            if source:
                candidates.insert(0, ("variants", variant, "platform-sources", source, "args", name))
            where = next((c for c in candidates if c in spec.value_marks), candidates[-1])
            problems.append(
                spec.diagnostic(
                    where,
                    f"ARG {name} is never declared in {dockerfile} for the stages built; the value will be ignored",
                    "warning",
                    key=True,
                )
            )
    if missing:
        # One line for all of them: a spec kept outside its project (an example) would say it once per file otherwise.
        problems.append(
            spec.diagnostic(
                ("variants",),
                f"Dockerfiles not found beside the spec: {', '.join(missing)}; stages and ARGs are checked when the spec "
                f"is used inside the project that has them (context {Path(spec.directory, plan.targets[0].context)})",
                "warning",
                key=True,
            )
        )
    return sorted(set(problems), key=lambda d: (d.line, d.column, d.message))
