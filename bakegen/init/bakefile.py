"""`bakegen init --from-bake`: targets mapped to variants x stages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bakegen.dockerfile import DockerfileInfo, parse_dockerfile
from bakegen.errors import BakegenError, Diagnostic
from bakegen.init.bakeprint import BakeTarget, _Report, _target_order, bake_print, split_reference
from bakegen.init.common import (
    _IDENTIFIER,
    _NAME,
    _REPOSITORY,
    MODELLED_BAKE_ATTRIBUTES,
    SpecDraft,
    VariantDraft,
    _Names,
    _relative,
    _shown,
    guess_repository,
)
from bakegen.init.dockerfiles import ScannedDockerfile, scan_dockerfile
from bakegen.init.sources import attach_sources, find_sources
from bakegen.platforms import platform_problem


def draft_from_bake(
    bake_file: Path, names: Sequence[str], spec_dir: Path, repository: str | None = None
) -> tuple[SpecDraft, list[Diagnostic]]:
    if not bake_file.is_file():
        raise BakegenError(f"{bake_file}: no such file")
    bake_file = bake_file.absolute()
    bake_dir = bake_file.parent
    printed, fell_back = bake_print(bake_file, names)
    shown = _shown(bake_file)
    notes: list[Diagnostic] = []
    if fell_back:
        notes.append(
            Diagnostic(
                shown,
                0,
                0,
                "",
                f"has no default group; read every target it declares ({', '.join(fell_back)}); choose with --target",
                "warning",
            )
        )
    report = _Report(shown)
    raw: Mapping[str, Any] = printed.get("target") or {}
    order = _target_order(printed)
    if not order:
        raise BakegenError(f"{shown}: `docker buildx bake --print` shows no targets")

    # Context: bakegen has one per spec. The most common one wins; other targets are reported.
    context = Counter(str(raw[n].get("context", ".")) for n in order).most_common(1)[0][0]
    parsed: dict[Path, tuple[DockerfileInfo, ScannedDockerfile] | None] = {}
    targets: list[BakeTarget] = []
    references: dict[str, list[tuple[str, str]]] = {}
    for name in order:
        attributes: Mapping[str, Any] = raw[name]
        for attribute in attributes:
            if attribute not in MODELLED_BAKE_ATTRIBUTES and attribute != "dockerfile-inline":
                report.add("unmodelled", attribute, name)
        target = _bake_target(name, attributes, context, bake_dir, parsed, report)
        if target is None:
            continue
        targets.append(target)
        references[name] = []
        for reference in attributes.get("tags") or []:
            split = split_reference(str(reference))
            if split is None:
                report.add("digest", f"tags {reference}", name)
            else:
                references[name].append(split)
    if not targets:
        raise BakegenError([replace(n, severity="error") for n in notes + report.diagnostics()])

    # The repository: the one most tags use. Tags in others, and tags given twice, are reported.
    repositories = Counter(repo for refs in references.values() for repo, _ in refs)
    carried_repository = repositories.most_common(1)[0][0] if repositories else None
    if carried_repository is not None and not _REPOSITORY.fullmatch(carried_repository):
        for name, refs in references.items():
            if any(repo == carried_repository for repo, _ in refs):
                report.add("repository", f"tags {carried_repository}", name)
        carried_repository = None
    tags_of = {name: [tag for repo, tag in refs if repo == carried_repository] for name, refs in references.items()}
    source_of = find_sources(targets, tags_of) if carried_repository is not None else {}
    owner: dict[str, str] = {}
    with_tags = []
    for target in targets:
        if target.name in source_of:  # the same tags as an earlier target, other platforms: a platform source
            with_tags.append(replace(target, tags=tuple(dict.fromkeys(tags_of[target.name]))))
            continue
        tags: list[str] = []
        for repo, tag in references[target.name]:
            if carried_repository is None:
                continue
            if repo != carried_repository:
                report.add("other-repository", f"tags {repo}:{tag}", target.name)
            elif owner.setdefault(tag, target.name) != target.name:
                report.add("duplicate", f"tags {repo}:{tag}", target.name)
            elif tag not in tags:
                tags.append(tag)
        if not tags:
            report.add("no-tags", "tags", target.name)
        with_tags.append(replace(target, tags=tuple(tags)))
    targets = with_tags

    draft, renamed = _variants_from_targets([t for t in targets if t.name not in source_of])
    draft, left = attach_sources(draft, renamed, {t.name: t for t in targets}, source_of)
    for name in left:
        for tag in tags_of[name]:
            report.add("duplicate", f"tags {carried_repository}:{tag}", name)
    annotations = _common_annotations(targets, report)
    notes += report.diagnostics()
    for old, new in renamed:
        notes.append(Diagnostic(shown, 0, 0, "", f"target {old} is now {new} (bakegen names targets STAGE-VARIANT)", "warning"))
    header = [
        f"Generated by `bakegen init` from {shown}, as `docker buildx bake --print` resolved it",
        "(bake variables are written as the values they had). A starting point, meant to be edited;",
        "then run `bakegen validate --strict` and `bakegen render`.",
    ]
    if report.not_carried():
        header.append(f"Not carried over (init listed them on stderr): {', '.join(report.not_carried())}.")
    if report.left_out():
        header.append(f"Targets left out: {', '.join(report.left_out())}.")
    return (
        replace(
            draft,
            repository=repository or carried_repository or guess_repository(bake_dir),
            repository_guessed=repository is None and carried_repository is None,
            context=_relative(bake_dir / context, spec_dir),
            annotations=annotations,
            header=tuple(header),
        ),
        notes,
    )


def _bake_target(
    name: str,
    attributes: Mapping[str, Any],
    context: str,
    bake_dir: Path,
    parsed: dict[Path, tuple[DockerfileInfo, ScannedDockerfile] | None],
    report: _Report,
) -> BakeTarget | None:
    """One printed target as bakegen can build it, or None (reported) when it cannot."""
    target_context = str(attributes.get("context", "."))
    if "dockerfile-inline" in attributes:
        report.add("skipped-inline", "dockerfile-inline", name)
        return None
    if target_context != context:
        report.add("skipped-context", f"context {target_context}", name)
        return None
    if "://" in context or context.startswith("git@"):
        report.add("skipped-remote", f"context {context}", name)
        return None
    dockerfile = str(attributes.get("dockerfile", "Dockerfile"))
    path = Path(bake_dir, context, dockerfile)
    if path not in parsed:
        try:
            parsed[path] = (parse_dockerfile(path), scan_dockerfile(path.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            parsed[path] = None
    found = parsed[path]
    if found is None:
        report.add("skipped-missing", f"dockerfile {dockerfile}", name)
        return None
    info, scanned = found
    stage = str(attributes.get("target") or "").lower()
    if not stage:
        # Without `target` bake builds the last stage; bakegen always names one, so it needs a name.
        last = scanned.stages[-1].name if scanned.stages else None
        if last is None:
            report.add("skipped-unnamed", f"dockerfile {dockerfile}", name)
            return None
        stage = last
    if stage not in info.stages:
        report.add("skipped-stage", f"target {stage}", name)
        return None
    if not _NAME.fullmatch(stage):
        report.add("skipped-stagename", f"target {stage}", name)
        return None
    args = []
    for arg, value in sorted((attributes.get("args") or {}).items()):
        if value is None:
            continue
        if arg in info.args and _IDENTIFIER.fullmatch(arg):
            args.append((arg, str(value)))
        else:
            report.add("undeclared", f"args.{arg}", name)
    platforms = []
    for platform in attributes.get("platforms") or []:
        if platform_problem(str(platform)) is None:
            platforms.append(str(platform))
        else:
            report.add("platform", f"platforms {platform}", name)
    if not attributes.get("platforms"):
        report.add("native", "platforms", name)
    return BakeTarget(
        name=name,
        stage=stage,
        context=context,
        dockerfile=dockerfile,
        platforms=tuple(dict.fromkeys(platforms or ["linux/amd64"])),
        args=tuple(args),
        tags=(),
        labels=tuple(sorted((str(k), str(v)) for k, v in (attributes.get("labels") or {}).items() if v is not None)),
        annotations=tuple(str(a) for a in attributes.get("annotations") or []),
    )


def _common_annotations(targets: Sequence[BakeTarget], report: _Report) -> tuple[tuple[str, str], ...]:
    """bakegen's annotations apply to every target: carried when all targets have the same ones."""
    if len({t.annotations for t in targets}) > 1:
        for target in targets:
            if target.annotations:
                report.add("annotations-differ", "annotations", target.name)
        return ()
    pairs = [a.partition("=") for a in targets[0].annotations]
    if all(sep for _, sep, _ in pairs) and len({k for k, _, _ in pairs}) == len(pairs):
        return tuple(sorted((k, v) for k, _, v in pairs))
    for target in targets:
        report.add("annotations", "annotations", target.name)
    return ()


def _variants_from_targets(targets: list[BakeTarget]) -> tuple[SpecDraft, list[tuple[str, str]]]:
    """Group targets into variants x stages. Returns the draft (no repository yet) and renamed targets."""
    common_labels = set(targets[0].labels)
    for target in targets[1:]:
        common_labels &= set(target.labels)
    labels = tuple(sorted(common_labels))

    # Tags as `{stage}{suffix}` when every tag starts with its target's stage: the rest is the
    # variant's suffix (and aliases). Otherwise `{suffix}` alone, one variant per target.
    by_stage = all(tag.startswith(t.stage) for t in targets for tag in t.tags)
    template = "{stage}{suffix}" if by_stage else "{suffix}"

    def residues(target: BakeTarget) -> tuple[str, ...]:
        return tuple(tag[len(target.stage) :] if by_stage else tag for tag in target.tags)

    def shape(target: BakeTarget) -> tuple[Any, ...]:
        variant_labels = tuple(pair for pair in target.labels if pair not in common_labels)
        return (target.dockerfile, target.platforms, target.args, variant_labels, residues(target))

    # Candidate variants: STAGE-REST names the target of stage STAGE in variant REST.
    groups: dict[str, list[BakeTarget]] = {}
    for target in targets:
        rest = target.name[len(target.stage) + 1 :] if target.name.startswith(f"{target.stage}-") else ""
        key = rest if by_stage and rest and _NAME.fullmatch(rest) else f"\0{target.name}"
        groups.setdefault(key, []).append(target)
    members: list[tuple[str, list[BakeTarget]]] = []
    for key, group in groups.items():
        if not key.startswith("\0") and len({shape(t) for t in group}) == 1 and len({t.stage for t in group}) == len(group):
            members.append((key, group))
        else:
            members += [(t.name, [t]) for t in group]

    stages = tuple(dict.fromkeys(t.stage for t in targets))
    names = _Names(stages)
    variants: list[VariantDraft] = []
    renamed: list[tuple[str, str]] = []
    for wanted, group in members:
        first = group[0]
        name = names.take(wanted, [t.stage for t in group])
        for target in group:
            if f"{target.stage}-{name}" != target.name:
                renamed.append((target.name, f"{target.stage}-{name}"))
        suffixes: tuple[str, ...] | None = tuple(dict.fromkeys(residues(first))) or None
        if suffixes is None and not by_stage:
            suffixes = (f"{first.stage}-{name}",)  # `{suffix}` alone must still make a valid tag
        variants.append(
            VariantDraft(
                name=name,
                dockerfile=first.dockerfile,
                stages=tuple(s for s in stages if s in {t.stage for t in group}),
                platforms=first.platforms,
                suffixes=suffixes,
                args=first.args,
                labels=tuple(pair for pair in first.labels if pair not in common_labels),
            )
        )
    draft = SpecDraft(
        repository="", repository_guessed=False, context=".", stages=stages, tags=(template,), variants=tuple(variants), labels=labels
    )
    return draft, renamed
