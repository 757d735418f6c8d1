"""`bakegen version`: the version the spec's `versioning` scheme gives this checkout, computed from git
exactly as `bake`, `plan`, `merge` and the generated workflow compute it."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace

from bakegen import report
from bakegen.commands.common import SpecOptions, load, version_info
from bakegen.errors import EXIT_OK, BakegenError


def run(spec: SpecOptions, *, as_json: bool, explicit: str | None = None, environ: Mapping[str, str] = os.environ) -> int:
    compiled = load(replace(spec, versioned=False))  # computed once, below
    versioning = compiled.plan.versioning
    if versioning is None:
        raise BakegenError(
            f"{compiled.plan.spec_path}: no `versioning:` block; add one (e.g. `versioning: {{scheme: build-number}}`) to compute versions from git"
        )
    info = version_info(versioning, compiled.spec.directory, environ, explicit=explicit)
    for note in info.notes:
        report.progress(f"note: {note}")
    if as_json:
        print(json.dumps({**info.as_json(), "variables": info.variables(versioning)}, indent=2, ensure_ascii=False))
    else:
        print(info.version)
    return EXIT_OK
