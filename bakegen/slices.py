"""Parts of a plan: some targets, one platform, the native platform. How one machine (or one
CI runner) builds its share of the matrix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from bakegen.model import BuildPlan, Group, Target


@dataclass(frozen=True)
class Slice:
    """One bake run: part of the plan, for one platform or for the targets' own platforms."""

    label: str
    plan: BuildPlan

    def key(self, target: str, several: bool) -> str:
        """A target's name in reports; with several slices, which slice too: full-cpu@linux/arm64."""
        return f"{target}@{self.label}" if several else target


def only(plan: BuildPlan, targets: Iterable[Target]) -> BuildPlan:
    """The plan restricted to some targets (groups keep only those members)."""
    keep = {t.name for t in targets}
    groups = tuple(Group(g.name, tuple(n for n in g.targets if n in keep), g.description) for g in plan.groups)
    return replace(plan, targets=tuple(t for t in plan.targets if t.name in keep), groups=tuple(g for g in groups if g.targets))


def for_platform(plan: BuildPlan, platform: str) -> BuildPlan:
    """Targets that build `platform`, narrowed to it."""
    targets = [replace(target, platforms=(platform,)) for target in plan.targets if platform in target.platforms]
    return replace(only(plan, targets), targets=tuple(targets))


def for_native(plan: BuildPlan, native: str) -> BuildPlan:
    """One image per published tag, as `docker build` makes: each target narrowed to the native
    platform (or its first). Of the targets whose images share tags (platform sources), only the
    one that builds that platform stays."""
    chosen: dict[str, str] = {}
    for target in plan.targets:
        if native in target.platforms:
            chosen[target.tag_owner] = native
        else:
            chosen.setdefault(target.tag_owner, target.platforms[0])
    targets = [replace(t, platforms=(chosen[t.tag_owner],)) for t in plan.targets if chosen[t.tag_owner] in t.platforms]
    return replace(only(plan, targets), targets=tuple(targets))


def without_cache_export(plan: BuildPlan) -> BuildPlan:
    """The plan with no cache-to: the docker driver cannot export a build cache."""
    return replace(plan, targets=tuple(replace(t, export_cache=False) for t in plan.targets))


def platforms_of(targets: Iterable[Target]) -> list[str]:
    return list(dict.fromkeys(p for t in targets for p in t.platforms))
