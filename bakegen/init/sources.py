"""`bakegen init --from-bake`: targets that publish the same tags as an earlier one for other
platforms, from another Dockerfile (llama.cpp's s390x), become that variant's `platform-sources`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from bakegen.init.bakeprint import BakeTarget
from bakegen.init.common import _NAME, SourceDraft, SpecDraft
from bakegen.platforms import platform_suffix


def find_sources(targets: Sequence[BakeTarget], tags_of: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """source target -> the earlier target whose tags (all of them, and only them) it publishes for
    platforms that one does not build."""
    found: dict[str, str] = {}
    for index, target in enumerate(targets):
        tags = set(tags_of.get(target.name, ()))
        same = [e for e in targets[:index] if e.name not in found and tags and set(tags_of.get(e.name, ())) == tags]
        if same and not set(same[0].platforms) & set(target.platforms):
            found[target.name] = same[0].name
    return found


def attach_sources(
    draft: SpecDraft, renamed: Sequence[tuple[str, str]], targets: Mapping[str, BakeTarget], source_of: Mapping[str, str]
) -> tuple[SpecDraft, list[str]]:
    """The draft with each variant's platform sources; returns the source targets that could not be carried
    (a source for only some stages, or one whose labels or args a source cannot express)."""
    new_name = dict(renamed)
    by_variant = {v.name: v for v in draft.variants}
    grouped: dict[tuple[str, str], list[tuple[str, BakeTarget]]] = {}
    for source_name, owner_name in source_of.items():
        owner, source = targets[owner_name], targets[source_name]
        placed = new_name.get(owner_name, owner_name)
        variant_of_owner = placed[len(owner.stage) + 1 :]
        rest = source_name[len(owner_name) + 1 :] if source_name.startswith(owner_name + "-") else platform_suffix(source.platforms[0])
        grouped.setdefault((variant_of_owner, rest), []).append((owner.stage, source))
    left: list[str] = []
    sources: dict[str, list[SourceDraft]] = {}
    for (variant_name, name), members in grouped.items():
        variant = by_variant.get(variant_name)
        first = members[0][1]
        owners = [targets[source_of[s.name]] for _, s in members]
        carried = (
            variant is not None
            and _NAME.fullmatch(name) is not None
            and {stage for stage, _ in members} == set(variant.stages)
            and len({(s.dockerfile, s.platforms, s.args) for _, s in members}) == 1
            and all(s.labels == o.labels for (_, s), o in zip(members, owners, strict=True))
            and dict(variant.args).keys() <= dict(first.args).keys()  # a source inherits the variant's args
        )
        if not carried or variant is None:
            left += [s.name for _, s in members]
            continue
        own_args = tuple(pair for pair in first.args if pair not in variant.args)
        stage_map = tuple(sorted((stage, s.stage) for stage, s in members if s.stage != stage))
        sources.setdefault(variant_name, []).append(SourceDraft(name, first.dockerfile, first.platforms, own_args, stage_map))
    variants = tuple(replace(v, sources=tuple(sources.get(v.name, ()))) for v in draft.variants)
    return replace(draft, variants=variants), left
