from __future__ import annotations

import argparse

from bakegen.errors import EXIT_OK
from bakegen.pipeline import compile_spec
from bakegen.workflow import matrix_json


def run(args: argparse.Namespace) -> int:
    plan = compile_spec(args.file, strict=args.strict, quiet=True).plan
    print(matrix_json(plan, platform_split=args.platform_split))
    return EXIT_OK
