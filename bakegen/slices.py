"""Parts of a plan: some targets, one platform, the native platform. How one machine (or one
CI runner) builds its share of the matrix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from bakegen.model import BuildPlan, Group, Target, primary_tag
from bakegen.platforms import platform_suffix
from bakegen.template import Template, Text, joined


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


def platform_tag(plan: BuildPlan, target: Target, platform: str) -> Template:
    """Where a per-platform build is pushed before `bakegen merge`: TAG-ARCH."""
    return joined((*primary_tag(plan, target), Text(f"-{platform_suffix(platform)}")))


def for_platform(plan: BuildPlan, platform: str, *, platform_tags: bool) -> BuildPlan:
    """Targets that build `platform`, narrowed to it; with platform_tags each is tagged TAG-ARCH only."""
    targets = []
    for target in plan.targets:
        if platform not in target.platforms:
            continue
        tags = (platform_tag(plan, target, platform),) if platform_tags else target.tags
        targets.append(replace(target, platforms=(platform,), tags=tags))
    return replace(only(plan, targets), targets=tuple(targets))


def for_native(plan: BuildPlan, native: str) -> BuildPlan:
    """Each multi-platform target narrowed to the native platform (or its first), as `docker build` does."""
    targets = tuple(
        replace(t, platforms=(native if native in t.platforms else t.platforms[0],)) if len(t.platforms) > 1 else t for t in plan.targets
    )
    return replace(plan, targets=targets)


def without_cache_export(plan: BuildPlan) -> BuildPlan:
    """The plan with no cache-to: the docker driver cannot export a build cache."""
    return replace(plan, targets=tuple(replace(t, export_cache=False) for t in plan.targets))


def platforms_of(targets: Iterable[Target]) -> list[str]:
    return list(dict.fromkeys(p for t in targets for p in t.platforms))
