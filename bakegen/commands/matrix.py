"""`bakegen matrix`: the job matrix as JSON, for a hand-written workflow (`fromJSON`)."""

from __future__ import annotations

from bakegen.commands.common import SpecOptions, load
from bakegen.errors import EXIT_OK
from bakegen.workflow import matrix_json


def run(spec: SpecOptions, *, platform_split: bool) -> int:
    plan = load(spec, quiet=True).plan
    print(matrix_json(plan, platform_split=platform_split))
    return EXIT_OK
