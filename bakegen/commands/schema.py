"""`bakegen schema`: the spec's JSON Schema, for editors and `check-jsonschema`, from the installed
package itself, so a pip user never has to look for it in site-packages."""

from __future__ import annotations

from dataclasses import dataclass

from bakegen import resources
from bakegen.output import emit

SCHEMA_FILE = "bakegen.schema.json"


@dataclass(frozen=True)
class SchemaOptions:
    """`output`: a path to write atomically, or - for stdout."""

    output: str = "-"


def schema_text() -> str:
    return resources.read_text(SCHEMA_FILE)


def run(options: SchemaOptions) -> int:
    return emit(schema_text(), options.output, check=False, regenerate=f"bakegen schema -o {options.output}")
