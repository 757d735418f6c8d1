"""Files shipped with bakegen: the JSON Schema and the bake template.

In a wheel they are package data under bakegen/data/; in a checkout they live at the
top level (schema/, docker-bake.hcl.j2), where the design card puts them.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent
_CHECKOUT_PATHS = {
    "bakegen.schema.json": _CHECKOUT_ROOT / "schema" / "bakegen.schema.json",
    "docker-bake.hcl.j2": _CHECKOUT_ROOT / "docker-bake.hcl.j2",
}


@cache
def read_text(name: str) -> str:
    packaged = resources.files("bakegen").joinpath("data").joinpath(name)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return _CHECKOUT_PATHS[name].read_text(encoding="utf-8")
