"""`bakegen render`: write the bake file (HCL or JSON), atomically, or check that it is current."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bakegen.commands.common import SpecOptions, load
from bakegen.errors import EXIT_FAILED, EXIT_OK, BakegenError
from bakegen.output import emit
from bakegen.render import Format, render
from bakegen.spec import display_path


def default_output(spec_file: str, fmt: Format) -> str:
    return str(Path(spec_file).parent / f"docker-bake.{fmt}")


def run(spec: SpecOptions, *, specs: Sequence[str] = (), output: str | None, fmt: Format, check: bool, exit_code: bool = False) -> int:
    """Render each spec (the -f one, or several given as arguments, as pre-commit passes them)."""
    paths = list(specs) or [spec.path]
    if output and len(paths) > 1:
        raise BakegenError("-o names one file; with several specs each bake file goes beside its spec")
    if exit_code and check:
        raise BakegenError("--exit-code writes and reports a change; --check only reports: choose one")
    worst = EXIT_OK
    for path in paths:
        compiled = load(SpecOptions(path, spec.strict))
        target = output or default_output(path, fmt)
        text = render(compiled.plan, fmt, None if target == "-" else target)
        regenerate = f"bakegen render -f {display_path(path)} -o {display_path(target)}" + (" --format json" if fmt == "json" else "")
        code = emit(text, target, check=check, regenerate=regenerate, exit_code=exit_code)
        worst = max(worst, code)
    return EXIT_FAILED if worst else EXIT_OK
