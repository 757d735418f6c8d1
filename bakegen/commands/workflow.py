"""`bakegen workflow`: write the GitHub Actions workflow that builds the matrix on native runners."""

from __future__ import annotations

import os
from pathlib import Path

from bakegen.commands.common import SpecOptions, load
from bakegen.output import emit
from bakegen.workflow import render_workflow, repo_root

DEFAULT_OUTPUT = ".github/workflows/docker.yml"


def run(spec: SpecOptions, *, output: str | None, check: bool) -> int:
    compiled = load(spec)
    output = output or str(Path(spec.path).parent / DEFAULT_OUTPUT)
    target = None if output == "-" else output
    spec_in_repo = os.path.relpath(Path(spec.path).resolve(), repo_root(target).resolve())
    text = render_workflow(compiled.plan, spec_in_repo, target)
    return emit(text, output, check=check, regenerate=f"bakegen workflow -f {spec.path} -o {output}")
