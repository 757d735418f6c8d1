"""`bakegen smoke` (placeholder until the smoke runner lands)."""

from __future__ import annotations

import argparse

from bakegen.errors import BakegenError
from bakegen.model import BuildPlan


def check_plan(plan: BuildPlan, values: dict[str, str], args: argparse.Namespace) -> int:
    raise BakegenError("bakegen smoke is not available yet")
