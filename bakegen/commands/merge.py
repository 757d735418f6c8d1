"""`bakegen merge`: publish the final tags from per-platform images pushed by digest.

Each CI runner ran `bakegen bake --push --platform P --metadata-file digests-P.json`, which
pushed its images untagged; this reads those files and creates every final tag of each
target as one manifest list (`docker buildx imagetools create`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from bakegen import report
from bakegen.commands.common import Selection, SpecOptions, load, selected
from bakegen.errors import EXIT_OK, BakegenError
from bakegen.output import write_atomic
from bakegen.spec import display_path
from bakegen.steps import DIGESTS_SCHEMA, BuiltImage, MergeStep, execute

MERGED_SCHEMA = "bakegen.merged/v1"


def run(
    spec: SpecOptions,
    selection: Selection,
    *,
    sources: Sequence[Path],
    builder: str | None,
    dry_run: bool,
    allow_fewer_platforms: bool,
    metadata_file: Path | None,
    environ: Mapping[str, str],
) -> int:
    plan, values = selected(load(spec), selection, environ)
    images = read_digests(sources)
    if not any(b.target == t.name for b in images for t in plan.targets):
        raise BakegenError(f"none of the selected targets has an image in {', '.join(map(str, sources))}")
    # Each index gets its target's index annotations (MergeStep); the per-platform images carry the manifest ones.
    step = MergeStep(plan, values, tuple(images), allow_fewer_platforms=allow_fewer_platforms, builder=builder)
    code, record = execute([step], dry_run=dry_run)
    if code == EXIT_OK and metadata_file and not dry_run:
        # The published indexes: what the workflow's attest steps read (one entry per target).
        write_atomic(metadata_file, json.dumps({"schema": MERGED_SCHEMA, "images": record.merged}, indent=2) + "\n")
    return code


def read_digests(sources: Sequence[Path]) -> list[BuiltImage]:
    """The per-platform images recorded by `bakegen bake --metadata-file`, from files or directories of them."""
    files = [p for source in sources for p in (sorted(source.glob("*.json")) if source.is_dir() else [source])]
    if not files:
        raise BakegenError("--from: no digest files given (the --metadata-file of each `bakegen bake --push`)")
    images: list[BuiltImage] = []
    for path in files:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("schema") != DIGESTS_SCHEMA:
                raise ValueError(f"not a bakegen digest file (schema {DIGESTS_SCHEMA})")
            for entry in document["images"]:
                images.append(
                    BuiltImage(
                        key=f"{entry['target']}@{entry['platform']}", target=str(entry["target"]), platform=str(entry["platform"]),
                        repository=str(entry["repository"]), tags=tuple(entry.get("tags", ())), digest=str(entry["digest"]),
                    )
                )  # fmt: skip
        except OSError as exc:  # a missing file: say it as the shell would, not Python's repr
            raise BakegenError(f"{display_path(path)}: cannot read it: {exc.strerror or exc}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BakegenError(f"{display_path(path)}: {exc}") from None
    report.progress(f"merge: {len(images)} per-platform images from {len(files)} file(s)")
    return images
