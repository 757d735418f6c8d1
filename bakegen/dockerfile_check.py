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
    for target in plan.targets:
        vpath = ("variants", target.variant, "dockerfile")
        if target.dockerfile not in parsed:
            path = Path(spec.directory, target.context, target.dockerfile)
            if not path.is_file():
                problems.append(spec.diagnostic(vpath, f"Dockerfile {path} does not exist (stages and ARGs are not checked)", "warning"))
                parsed[target.dockerfile] = None
            else:
                parsed[target.dockerfile] = parse_dockerfile(path)
        info = parsed[target.dockerfile]
        if info is None:
            continue
        if target.stage.lower() not in info.stages:
            stages = ", ".join(info.stages) or "no named stages"
            problems.append(spec.diagnostic(vpath, f"{target.dockerfile} has no stage {target.stage!r} (it defines: {stages})"))
        for name, _ in target.args:
            if name not in info.args:
                where: tuple[str, ...] = ("variants", target.variant, "args", name)
                if where not in spec.value_marks:
                    where = ("args", name)
                problems.append(
                    spec.diagnostic(
                        where, f"ARG {name} is never declared in {target.dockerfile}; the value will be ignored", "warning", key=True
                    )
                )
    return sorted(set(problems), key=lambda d: (d.line, d.column, d.message))
