"""`bakegen smoke`: run the spec's checks against the locally built images."""

from __future__ import annotations

from collections.abc import Mapping

from bakegen.commands.common import Selection, SpecOptions, cli_words, load, selected
from bakegen.errors import BakegenError
from bakegen.runners.smoke import ImageChecks
from bakegen.steps import SmokeSettings, SmokeStep, execute


def run(spec: SpecOptions, selection: Selection, settings: SmokeSettings, environ: Mapping[str, str]) -> int:
    compiled = load(spec)
    plan, values = selected(compiled, selection, environ)
    with cli_words(plan):
        # Each target's first tag: the image `bakegen bake --load` leaves in the local engine.
        images = tuple(ImageChecks(t.name, plan.local_image(t, values), t.checks) for t in plan.targets if t.checks)
    if not images:
        raise BakegenError(f"{plan.spec_path}: the selected targets declare no checks (see `checks` in the spec)")
    code, _ = execute([SmokeStep(images, values, settings)], dry_run=False)
    return code
