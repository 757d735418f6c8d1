from __future__ import annotations

import argparse
import os
from pathlib import Path

from bakegen.output import emit
from bakegen.pipeline import compile_spec
from bakegen.workflow import render_workflow, repo_root

DEFAULT_OUTPUT = ".github/workflows/docker.yml"


def run(args: argparse.Namespace) -> int:
    compiled = compile_spec(args.file, strict=args.strict)
    output = args.output or str(Path(args.file).parent / DEFAULT_OUTPUT)
    target = None if output == "-" else output
    spec_in_repo = os.path.relpath(Path(args.file).resolve(), repo_root(target).resolve())
    text = render_workflow(compiled.plan, spec_in_repo, target)
    return emit(text, output, check=args.check, regenerate=f"bakegen workflow -f {args.file} -o {output}")
