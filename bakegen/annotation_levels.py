"""The spec's OCI annotations by level, and what the docker driver keeps of them.

A spec annotation is `KEY=VALUE` with an optional level prefix, as bake writes them: `index:KEY`,
`manifest:KEY`, `index,manifest:KEY`, `manifest-descriptor:KEY`, `index-descriptor:KEY`; no prefix
means `manifest`. bakegen publishes every tag as an index made by `imagetools create` from
per-platform images, so the index level is applied there (the merge), and the manifest level on each
per-platform image (by buildx, or by bakegen's own upload with the docker driver). The docker driver's
image store keeps no annotations at all, and descriptor levels have no place bakegen can write them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

LEVELS = ("manifest", "index", "manifest-descriptor", "index-descriptor")


@dataclass(frozen=True)
class Annotation:
    levels: tuple[str, ...]
    key: str
    value: str

    @property
    def written(self) -> str:
        """As the spec (and bake) write it."""
        prefix = ",".join(self.levels)
        return f"{prefix + ':' if self.levels != ('manifest',) else ''}{self.key}={self.value}"


def parse(entries: Iterable[str]) -> list[Annotation]:
    """`[LEVELS:]KEY=VALUE` entries (a target's annotations) by level. A key's own colons are kept: only a
    prefix made of known levels is one."""
    out = []
    for entry in entries:
        key, _, value = entry.partition("=")
        prefix, sep, bare = key.partition(":")
        levels = tuple(p.strip() for p in prefix.split(","))
        if sep and all(level in LEVELS for level in levels):
            out.append(Annotation(levels, bare, value))
        else:
            out.append(Annotation(("manifest",), key, value))
    return out


def at_level(entries: Iterable[str], level: str) -> dict[str, str]:
    """KEY -> VALUE of the annotations that apply at `level`."""
    return {a.key: a.value for a in parse(entries) if level in a.levels}


def dropped_by_docker_driver(entries: Iterable[str], *, uploaded: bool) -> list[str]:
    """Annotations that a docker-driver run would lose, as the spec writes them. Loaded images keep none;
    when bakegen uploads them (--push), the manifest and index levels are written, the descriptor levels not."""
    kept = {"manifest", "index"} if uploaded else set()
    return [a.written for a in parse(entries) if not set(a.levels) <= kept]
