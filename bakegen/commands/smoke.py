"""`bakegen smoke`: run the spec's checks against the locally built images."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Mapping

from bakegen import report
from bakegen.commands.common import Selection, SpecOptions, cli_words, load, selected
from bakegen.errors import EXIT_OK, BakegenError
from bakegen.progress import KeywordError, Terminal, keyword_matches, use_color
from bakegen.runners.smoke import ImageChecks
from bakegen.steps import SmokeSettings, SmokeStep, execute


def run(
    spec: SpecOptions,
    selection: Selection,
    settings: SmokeSettings,
    environ: Mapping[str, str],
    *,
    quiet: bool = False,
    as_json: bool = False,
) -> int:
    """quiet (-q): no progress, notes or warnings, only the results; as_json (--json): every check as one JSON
    document on stdout, the human output on stderr."""
    started = time.monotonic()
    report.configure(quiet=quiet, color=use_color(Terminal.of(sys.stderr, environ)))
    if settings.keyword:
        try:
            keyword_matches(settings.keyword, "")
        except KeywordError as exc:
            raise BakegenError(str(exc)) from None
    compiled = load(spec)
    plan, values = selected(compiled, selection, environ)
    with cli_words(plan):
        # Each tag's image as `bakegen bake --load` leaves it in the local engine (one platform per tag:
        # a platform source shares its owner's tags, so its owner's entry checks whichever was loaded).
        owners = [t for t in plan.targets if t.tag_owner == t.name or t.tag_owner not in {o.name for o in plan.targets}]
        images = tuple(ImageChecks(t.name, plan.local_image(t, values), t.checks) for t in owners if t.checks)
    if not images:
        raise BakegenError(f"{plan.spec_path}: the selected targets declare no checks (see `checks` in the spec)")
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        code, record = execute([SmokeStep(images, values, settings)], dry_run=False)
    if as_json:
        document = {
            "command": "smoke",
            "status": "ok" if code == EXIT_OK else "failed",
            "exit_code": code,
            "seconds": round(time.monotonic() - started, 3),
            "checks": report.smoke_json(record.smoked),
        }
        print(json.dumps(document, indent=2))
    return code
