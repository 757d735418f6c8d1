"""`bakegen merge`: publish multi-platform tags from per-platform images.

After each platform was built and pushed as TAG-ARCH (`bakegen bake --push --platform P
--platform-tags`, one CI runner per platform), this creates every final tag of each
target as one manifest list with `docker buildx imagetools create`.
"""

from __future__ import annotations

from collections.abc import Mapping

from bakegen.commands.common import Selection, SpecOptions, load, selected
from bakegen.steps import MergeStep, execute


def run(spec: SpecOptions, selection: Selection, *, builder: str | None, dry_run: bool, environ: Mapping[str, str]) -> int:
    plan, values = selected(load(spec), selection, environ)
    code, _ = execute([MergeStep(plan, values, builder)], dry_run=dry_run)
    return code
