"""`bakegen init`: a starting bakegen.yaml from what a project already has.

Two sources:
- the Dockerfiles under a directory: every named stage, every ARG with its default, one
  variant per Dockerfile (cpu.Dockerfile -> cpu, Dockerfile.cuda -> cuda, Dockerfile -> main);
- an existing bake file (`--from-bake`), read through the real `docker buildx bake --print`,
  so buildx itself resolves variables, functions, inheritance and matrices. Targets map to
  variants x stages where their names and tags allow; what bakegen does not model is named
  on stderr (and in the file's header), never dropped silently.

The spec is checked the way `bakegen validate --strict` checks it before anything is written,
and nothing is overwritten without `force`. It asks nothing interactively: every choice it
makes is written down in the file, which is meant to be edited.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from bakegen.errors import EXIT_FAILED, EXIT_OK, BakegenError
from bakegen.init.bakefile import draft_from_bake
from bakegen.init.common import _REPOSITORY, MAX_DOCKERFILES, SpecDraft, VariantDraft, guess_repository
from bakegen.init.dockerfiles import draft_from_dockerfiles, find_dockerfiles, scan_dockerfile
from bakegen.init.writer import check_generated, spec_data, spec_yaml
from bakegen.output import write_atomic
from bakegen.spec import DEFAULT_SPEC

# What other modules and the tests use; the rest lives in the package's modules.
__all__ = [
    "InitOptions",
    "SpecDraft",
    "VariantDraft",
    "check_generated",
    "draft_from_bake",
    "draft_from_dockerfiles",
    "find_dockerfiles",
    "guess_repository",
    "run_init",
    "scan_dockerfile",
    "spec_data",
    "spec_yaml",
]


@dataclass(frozen=True)
class InitOptions:
    """What `bakegen init` reads and where it writes."""

    directory: Path = Path(".")  # searched for Dockerfiles (without from_bake)
    output: str = DEFAULT_SPEC  # a path, or "-" for stdout
    from_bake: Path | None = None  # an existing bake file (HCL, JSON or compose), read through buildx
    bake_targets: tuple[str, ...] = ()  # targets or groups of the bake file (default: its default group)
    repository: str | None = None  # image.repository; default: from the bake file's tags, else the directory name
    force: bool = False  # overwrite an existing output file
    max_dockerfiles: int = MAX_DOCKERFILES


def run_init(options: InitOptions) -> int:
    """Write a starting spec. Returns an exit code; raises BakegenError on bad input (exit 2)."""
    if options.bake_targets and options.from_bake is None:
        raise BakegenError("--target names targets of a bake file; it needs --from-bake FILE")
    if options.repository is not None and not _REPOSITORY.fullmatch(options.repository):
        raise BakegenError(f"--repository {options.repository!r}: not an image repository (lowercase, e.g. registry.example:5000/team/app)")
    if options.output == "-":
        spec_path = Path.cwd() / DEFAULT_SPEC
    else:
        spec_path = Path(options.output)
        if spec_path.is_dir():
            raise BakegenError(f"{spec_path}: is a directory; give the spec's file name, e.g. -o {spec_path / DEFAULT_SPEC}")
        # Checked before any work (and before running buildx): never overwrite by surprise.
        if spec_path.exists() and not options.force:
            raise BakegenError(f"{spec_path} already exists; use --force to overwrite it")
    spec_dir = spec_path.absolute().parent

    if options.from_bake is not None:
        draft, notes = draft_from_bake(options.from_bake, options.bake_targets, spec_dir, options.repository)
    else:
        draft, notes = draft_from_dockerfiles(options.directory, spec_dir, options.repository, options.max_dockerfiles)
    data = spec_data(draft)
    text = spec_yaml(draft, data)
    problems = check_generated(text, data, spec_path)
    for note in notes:
        print(note, file=sys.stderr)
    if problems:
        print(
            "bakegen init: the spec it built does not pass `bakegen validate --strict` (a bug in bakegen init; please report it):",
            file=sys.stderr,
        )
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_FAILED
    if options.output == "-":
        sys.stdout.write(text)
        return EXIT_OK
    write_atomic(spec_path, text)
    shown = options.output
    print(
        f"wrote {shown}: {len(draft.variants)} variant(s), {len(draft.stages)} stage(s). It is a starting point; edit it, then",
        file=sys.stderr,
    )
    print(f"  bakegen validate -f {shown} && bakegen render -f {shown}", file=sys.stderr)
    return EXIT_OK
