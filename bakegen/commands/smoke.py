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
        # Each tag's image as `bakegen bake --load` leaves it in the local engine (one platform per tag:
        # a platform source shares its owner's tags, so its owner's entry checks whichever was loaded).
        owners = [t for t in plan.targets if t.tag_owner == t.name or t.tag_owner not in {o.name for o in plan.targets}]
        images = tuple(ImageChecks(t.name, plan.local_image(t, values), t.checks) for t in owners if t.checks)
    if not images:
        raise BakegenError(f"{plan.spec_path}: the selected targets declare no checks (see `checks` in the spec)")
    code, _ = execute([SmokeStep(images, values, settings)], dry_run=False)
    return code
