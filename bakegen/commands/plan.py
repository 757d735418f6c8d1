"""`bakegen plan`: the resolved targets as a table, or exactly what `docker buildx bake --print` prints."""

from __future__ import annotations

import json
from collections.abc import Mapping

from bakegen import report
from bakegen.commands.common import Selection, SpecOptions, cli_words, load, selected
from bakegen.errors import EXIT_OK
from bakegen.render import bake_print


def run(spec: SpecOptions, selection: Selection, *, as_json: bool, environ: Mapping[str, str]) -> int:
    compiled = load(spec)
    plan = compiled.plan
    _, values = selected(compiled, selection, environ)  # bake's --print shows the whole file's groups
    with cli_words(plan):
        names = list(selection.names)
        if as_json:
            print(json.dumps(bake_print(plan, values, names), indent=2, ensure_ascii=False))
        else:
            print(report.plan_table(plan, values, names))
    return EXIT_OK
