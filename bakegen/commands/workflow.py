"""`bakegen workflow`: write the GitHub Actions workflow that builds the matrix on native runners,
and beside it (in .github/) the actionlint configuration that names its runner labels."""

from __future__ import annotations

import os
from pathlib import Path

from bakegen import report
from bakegen.commands.common import SpecOptions, load
from bakegen.output import emit
from bakegen.spec import display_path
from bakegen.workflow import actionlint_config_path, foreign_actionlint_config, generate_workflow, is_bakegen_checkout, repo_root

DEFAULT_OUTPUT = ".github/workflows/docker.yml"


def run(spec: SpecOptions, *, output: str | None, check: bool) -> int:
    compiled = load(spec)
    output = output or str(Path(spec.path).parent / DEFAULT_OUTPUT)
    target = None if output == "-" else output
    root = repo_root(target)
    spec_in_repo = os.path.relpath(Path(spec.path).resolve(), root.resolve())
    generated = generate_workflow(compiled.plan, spec_in_repo, target, bakegen_checkout=is_bakegen_checkout(root))
    for warning in generated.warnings:
        report.progress(f"{display_path(spec.path)}: warning: {warning}")
    regenerate = f"bakegen workflow -f {spec.path} -o {output}"
    code = emit(generated.workflow, output, check=check, regenerate=regenerate)
    config = actionlint_config_path(target)
    if config is None:
        return code
    foreign = foreign_actionlint_config(config)
    if foreign is not None:
        # Never overwrite a configuration someone wrote; say what it needs instead.
        labels = ", ".join(generated.actionlint_labels) or "(none)"
        report.progress(
            f"{display_path(foreign)}: warning: not written by bakegen, so left alone; its self-hosted-runner labels should include: {labels}"
        )
        return code
    return max(code, emit(generated.actionlint_config, str(config), check=check, regenerate=regenerate))
