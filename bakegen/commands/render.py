from __future__ import annotations

import argparse
from pathlib import Path

from bakegen.output import emit
from bakegen.pipeline import compile_spec
from bakegen.render import render


def default_output(spec_file: str, fmt: str) -> str:
    return str(Path(spec_file).parent / f"docker-bake.{fmt}")


def run(args: argparse.Namespace) -> int:
    compiled = compile_spec(args.file, strict=args.strict)
    output = args.output or default_output(args.file, args.format)
    text = render(compiled.plan, args.format, None if output == "-" else output)
    regenerate = f"bakegen render -f {args.file} -o {output}" + (" --format json" if args.format == "json" else "")
    return emit(text, output, check=args.check, regenerate=regenerate)
