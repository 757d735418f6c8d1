"""`bakegen render`: write the bake file (HCL or JSON), atomically, or check that it is current."""

from __future__ import annotations

from pathlib import Path

from bakegen.commands.common import SpecOptions, load
from bakegen.output import emit
from bakegen.render import Format, render


def default_output(spec_file: str, fmt: Format) -> str:
    return str(Path(spec_file).parent / f"docker-bake.{fmt}")


def run(spec: SpecOptions, *, output: str | None, fmt: Format, check: bool) -> int:
    compiled = load(spec)
    output = output or default_output(spec.path, fmt)
    text = render(compiled.plan, fmt, None if output == "-" else output)
    regenerate = f"bakegen render -f {spec.path} -o {output}" + (" --format json" if fmt == "json" else "")
    return emit(text, output, check=check, regenerate=regenerate)
