"""A small on-disk cache in the user cache dir (XDG_CACHE_HOME or ~/.cache/bakegen).

Used for results that are pure functions of their inputs: the schema check of a spec
(only successes are remembered, keyed by a hash of schema and data) and Jinja's compiled
template. BAKEGEN_NO_CACHE=1 turns it off; an unwritable dir turns it off silently.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def cache_dir(kind: str) -> Path | None:
    if os.environ.get("BAKEGEN_NO_CACHE") == "1":
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bakegen" / kind
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return base


def remembered(kind: str, key: str) -> bool:
    directory = cache_dir(kind)
    return directory is not None and (directory / key).exists()


def remember(kind: str, key: str) -> None:
    directory = cache_dir(kind)
    if directory is None:
        return
    with contextlib.suppress(OSError):
        (directory / key).touch()
