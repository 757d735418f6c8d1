"""Command line: parse the arguments, then call the command's function with typed arguments.

Each verb lives in bakegen/commands/ and returns an exit code. Nothing below this module sees
argparse: `_dispatch` turns the Namespace into each command's options.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from bakegen import __version__, report
from bakegen.commands import completion
from bakegen.commands.common import SHORTHAND_ARGS, Selection, SpecOptions
from bakegen.errors import EXIT_FAILED, EXIT_USAGE, BakegenError, EngineError
from bakegen.progress import PROGRESS_MODES
from bakegen.spec import DEFAULT_SPEC

COMMANDS = {
    "validate": "check a spec against the schema and its Dockerfiles",
    "render": "write the docker-bake.hcl (or .json) for a spec",
    "plan": "show the resolved targets: Dockerfile, stage, platforms, tags, args",
    "bake": "build (and push) targets with docker buildx bake",
    "merge": "publish the final tags from per-platform images pushed by digest",
    "smoke": "run the spec's smoke checks on the built images (testcontainers)",
    "workflow": "write the GitHub Actions workflow that builds the matrix on native runners",
    "matrix": "print the job matrix as JSON, for your own workflow (fromJSON)",
    "init": "write a starting spec from existing Dockerfiles or a bake file",
    "version": "print the image version the spec's versioning scheme gives this git checkout",
    "schema": "print (or write) the spec's JSON Schema, for editors and check-jsonschema",
    "completion": "print the shell completion script for bash, zsh or fish",
}
# The commands that fill the spec's `versioning` variables from git (render never does: its output is deterministic).
VERSIONED_COMMANDS = frozenset({"plan", "bake", "merge", "smoke", "version"})


def _add_spec_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--file", default=DEFAULT_SPEC, metavar="SPEC", help=f"the spec (default: {DEFAULT_SPEC})")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")


def _add_output_options(parser: argparse.ArgumentParser, default: str) -> None:
    """-o and --check of the commands that write a generated file (render, workflow)."""
    parser.add_argument("-o", "--output", metavar="PATH", help=f"output file, or - for stdout (default: {default})")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 with a diff when the file on disk is stale")


def _add_selection_options(parser: argparse.ArgumentParser) -> None:
    """The spec, which targets, and the bake variables: shared by plan, bake, merge and smoke."""
    _add_spec_option(parser)
    parser.add_argument("names", nargs="*", metavar="TARGET|GROUP", help="targets or groups (default: the default group)")
    parser.add_argument(
        "--var", action="append", type=var_assignment, default=[], metavar="NAME=VALUE", help="set a bake variable (repeatable)"
    )
    _add_convenience_options(parser)


def var_assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bakegen",
        description="One schema-validated spec for a matrix of container images, compiled for docker buildx bake.",
    )
    parser.add_argument("--version", action="version", version=f"bakegen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "validate", help=COMMANDS["validate"], description="Check a spec: schema, semantics, Dockerfile stages and ARGs. Exit 2 on errors."
    )
    _add_spec_option(p)

    p = sub.add_parser(
        "render", help=COMMANDS["render"], description="Compile the spec into a bake file. Deterministic; written atomically."
    )
    _add_spec_option(p)
    _add_output_options(p, "docker-bake.hcl or .json beside the spec")
    p.add_argument("--format", choices=["hcl", "json"], default="hcl", help="bake file format (default: hcl)")
    p.add_argument("specs", nargs="*", metavar="SPEC", help="specs to render, each beside itself (as pre-commit passes them); default: -f")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when a file was written with changes (pre-commit's fix-and-fail)")

    p = sub.add_parser(
        "plan", help=COMMANDS["plan"], description="Show the resolved build plan; --json prints what `docker buildx bake --print` would."
    )
    _add_selection_options(p)
    p.add_argument("--json", action="store_true", help="print the `docker buildx bake --print` JSON shape")

    p = sub.add_parser(
        "bake",
        help=COMMANDS["bake"],
        description="Render the spec and build it with docker buildx bake. Progress shows live; a summary table and a closing line follow.",
    )
    _add_selection_options(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--push", action="store_true", help="push the images by digest, check them, then publish the tags")
    out.add_argument("--load", action="store_true", help="load the images into the local engine")
    p.add_argument("--set", action="append", default=[], metavar="PATTERN.KEY=VALUE", help="passed to bake as --set (repeatable)")
    p.add_argument(
        "--platform", metavar="PLATFORM",
        help="build only this platform (one CI runner each); with --push the images go up by digest for a later `bakegen merge --from`",
    )  # fmt: skip
    p.add_argument(
        "--split-platforms",
        action="store_true",
        help="build each platform on its own (the docker driver cannot build several at once); with --push, merge them into the tags",
    )
    p.add_argument("--builder", metavar="NAME", help="buildx builder (default: the current one)")
    p.add_argument(
        "--metadata-file", metavar="PATH", help="write every pushed image's digest and every published tag's index digest to PATH (JSON)"
    )
    p.add_argument("--dry-run", action="store_true", help="print the exact buildx command(s) and the bake file; build nothing")
    p.add_argument(
        "--progress", choices=PROGRESS_MODES, default="auto",
        help="auto (default): a live view per target on a terminal, plain in CI or through a pipe; tty; plain: the build log; "
        "quiet: errors and the table only; rawjson: buildx's JSON log",
    )  # fmt: skip
    p.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    p.add_argument(
        "--force", action="store_true", help="with --push: build and push every image, even those published with the same inputs digest"
    )
    p.add_argument(
        "--smoke", action="store_true", help="run the spec's smoke checks on the built images; with --push, push only if they pass"
    )
    for kind in ("provenance", "sbom"):
        p.add_argument(
            f"--{kind}", nargs="?", const="true", metavar="VALUE",
            help=f"attach a {kind} attestation (buildx's --{kind}; write --{kind}=VALUE); refused with the docker driver",
        )  # fmt: skip
    _add_smoke_options(p)
    _add_report_options(p)

    p = sub.add_parser(
        "merge",
        help=COMMANDS["merge"],
        description="For each target, create its tags as one manifest list from the digests that `bakegen bake --push` recorded.",
    )
    _add_selection_options(p)
    p.add_argument("--builder", metavar="NAME", help="buildx builder (default: the current one)")
    p.add_argument("--dry-run", action="store_true", help="print the imagetools commands only")
    p.add_argument(
        "--from", dest="sources", action="append", required=True, metavar="PATH",
        help="a digest file written by `bakegen bake --push --metadata-file`, or a directory of them (repeatable)",
    )  # fmt: skip
    p.add_argument("--metadata-file", metavar="PATH", help="write each final tag's index digest to PATH")
    p.add_argument(
        "--allow-fewer-platforms", action="store_true",
        help="publish even when a target lacks some of its platforms, or the tag today lists more platforms",
    )  # fmt: skip

    p = sub.add_parser(
        "smoke",
        help=COMMANDS["smoke"],
        description="Check the locally built images: commands, HTTP endpoints, files, env and labels. Containers are always removed.",
    )
    _add_selection_options(p)
    _add_smoke_options(p)
    _add_report_options(p)

    p = sub.add_parser(
        "workflow",
        help=COMMANDS["workflow"],
        description="Generate the image workflow: one job per variant and platform on native runners, smoke-tested, then a merge job.",
    )
    _add_spec_option(p)
    _add_output_options(p, ".github/workflows/docker.yml beside the spec")

    p = sub.add_parser(
        "init", help=COMMANDS["init"], description="Write a starting bakegen.yaml from the project's Dockerfiles or its bake file."
    )
    _add_init_options(p)

    p = sub.add_parser(
        "version",
        help=COMMANDS["version"],
        description="Print the version computed from git by the spec's `versioning` scheme, as bake, plan and the workflow use it.",
    )
    _add_spec_option(p)
    p.add_argument("--json", action="store_true", help="print every fact: version, aliases, revision, created, source, the OCI labels")

    p = sub.add_parser("matrix", help=COMMANDS["matrix"], description='The build matrix as JSON: {"include": [...]}.')
    _add_spec_option(p)
    p.add_argument(
        "--platform-split", action="store_true", help="one entry per variant and platform (with runner and arch), not per variant"
    )
    _add_schema_and_completion(sub)
    return parser


def _add_schema_and_completion(sub: Any) -> None:
    p = sub.add_parser("schema", help=COMMANDS["schema"], description="The JSON Schema (Draft 2020-12) of bakegen.yaml, as installed.")
    p.add_argument("-o", "--output", default="-", metavar="PATH", help="write it to PATH, atomically (default: - for stdout)")
    p = sub.add_parser(
        "completion",
        help=COMMANDS["completion"],
        description='A completion script: eval "$(bakegen completion bash)" in ~/.bashrc; see the README for zsh and fish.',
    )
    p.add_argument("shell", choices=completion.SHELLS, metavar="SHELL", help="bash, zsh or fish")


def _add_init_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", nargs="?", default=".", help="where to look for Dockerfiles (default: .)")
    parser.add_argument(
        "-o", "--output", default=DEFAULT_SPEC, metavar="PATH", help=f"the spec to write, or - for stdout (default: {DEFAULT_SPEC})"
    )
    parser.add_argument(
        "--from-bake",
        metavar="BAKEFILE",
        help="start from an existing bake file, read through `docker buildx bake --print` (needs docker buildx)",
    )
    parser.add_argument(
        "--target",
        action="append",
        default=[],
        dest="bake_targets",
        metavar="TARGET|GROUP",
        help="with --from-bake: the targets or groups to carry over (repeatable; default: the default group, else every target)",
    )
    parser.add_argument(
        "--repository",
        metavar="REPO",
        help="image repository, e.g. REGISTRY/NAMESPACE/NAME (default: from the bake file's tags, else the directory name)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite the output file if it exists")


def _add_convenience_options(p: argparse.ArgumentParser) -> None:
    for flag, arg in SHORTHAND_ARGS.items():
        p.add_argument(
            flag,
            action="append",
            type=functools.partial(_arg_value, arg),
            dest="arg_values",
            default=[],
            metavar="VALUE",
            help=f"set the ARG {arg}: the one bake variable that feeds it in the selected targets",
        )


def _arg_value(arg: str, value: str) -> tuple[str, str]:
    return (arg, value)


def _add_smoke_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=_positive_int, default=2, metavar="N", help="checks run at the same time (default: 2)")
    p.add_argument("--gpus", metavar="all", help="give the containers GPUs (docker --gpus); runs the checks marked requires: gpu")
    p.add_argument("--junit-xml", metavar="PATH", help="write a JUnit XML report of the smoke checks")
    p.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failed check (the running ones finish)")
    p.add_argument(
        "-k", dest="keyword", metavar="EXPRESSION",
        help="only the checks whose TARGET::CHECK name matches: substrings with not/and/or, e.g. 'server and not health'",
    )  # fmt: skip


def _add_report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="print errors and the results only: no progress, notes or warnings")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout (human output goes to stderr)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


class Interrupted(KeyboardInterrupt):
    """SIGTERM (a CI cancel, `timeout`): unwinds and cleans up as Ctrl-C does, and exits 143."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _signals_as_interrupts() -> Iterator[None]:
    """SIGINT and SIGTERM raise in the main thread, so every `finally` (containers, buildx) runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler), signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        # From here to the exit, a late signal only ends bakegen as it already is ending.
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def main(argv: Sequence[str] | None = None) -> int:
    try:
        with _signals_as_interrupts():
            report.configure()  # each command starts with its own warnings, unquiet (bake and smoke set -q and colour)
            return _dispatch(build_parser().parse_args(argv))
    except BakegenError as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic, file=sys.stderr)
        return EXIT_USAGE
    except EngineError as exc:
        print(f"bakegen: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as exc:
        print("bakegen: interrupted", file=sys.stderr)
        return 128 + exc.signum if isinstance(exc, Interrupted) else 130
    except BrokenPipeError:
        return 0


def _dispatch(args: argparse.Namespace) -> int:
    """The one place a Namespace becomes typed arguments. Each verb's module is imported when it runs,
    so `render` (a pre-commit hook, run on every commit) never loads the runners, init or the workflow."""
    if args.command == "init":
        from bakegen import init

        return init.run_init(
            init.InitOptions(
                directory=Path(args.directory),
                output=args.output,
                from_bake=Path(args.from_bake) if args.from_bake else None,
                bake_targets=tuple(args.bake_targets),
                repository=args.repository,
                force=args.force,
            )
        )
    if args.command == "schema":
        from bakegen.commands import schema

        return schema.run(schema.SchemaOptions(output=args.output))
    if args.command == "completion":
        return completion.run(completion.CompletionOptions(shell=args.shell))
    spec = SpecOptions(args.file, args.strict, versioned=args.command in VERSIONED_COMMANDS)
    environ = os.environ
    if args.command == "validate":
        from bakegen.commands import validate

        return validate.run(spec)
    if args.command == "render":
        from bakegen.commands import render

        return render.run(spec, specs=args.specs, output=args.output, fmt=args.format, check=args.check, exit_code=args.exit_code)
    if args.command == "workflow":
        from bakegen.commands import workflow

        return workflow.run(spec, output=args.output, check=args.check)
    if args.command == "version":
        from bakegen.commands import version

        return version.run(spec, as_json=args.json, environ=environ)
    if args.command == "matrix":
        from bakegen.commands import matrix

        return matrix.run(spec, platform_split=args.platform_split)
    selection = Selection(tuple(args.names), tuple(args.var), tuple(args.arg_values))
    if args.command == "plan":
        from bakegen.commands import plan

        return plan.run(spec, selection, as_json=args.json, environ=environ)
    if args.command == "merge":
        from bakegen.commands import merge

        return merge.run(
            spec,
            selection,
            sources=[Path(p) for p in args.sources],
            builder=args.builder,
            dry_run=args.dry_run,
            allow_fewer_platforms=args.allow_fewer_platforms,
            metadata_file=Path(args.metadata_file) if args.metadata_file else None,
            environ=environ,
        )
    from bakegen.steps import SmokeSettings

    settings = SmokeSettings(
        args.jobs, args.gpus, Path(args.junit_xml) if args.junit_xml else None, exitfirst=args.exitfirst, keyword=args.keyword
    )
    if args.command == "smoke":
        from bakegen.commands import smoke

        return smoke.run(spec, selection, settings, environ, quiet=args.quiet, as_json=args.json)
    assert args.command == "bake", args.command  # argparse allows only the verbs above
    from bakegen.commands import bake

    options = bake.BakeOptions(
        push=args.push,
        load=args.load,
        overrides=tuple(_set_pair(item) for item in args.set),
        platform=args.platform,
        split_platforms=args.split_platforms,
        builder=args.builder,
        metadata_file=Path(args.metadata_file) if args.metadata_file else None,
        dry_run=args.dry_run,
        quiet=args.quiet or args.progress == "quiet",
        progress=args.progress,
        json=args.json,
        no_cache=args.no_cache,
        smoke=args.smoke,
        smoke_settings=settings,
        provenance=args.provenance,
        sbom=args.sbom,
        force=args.force,
    )
    return bake.run(spec, selection, options, environ)


def _set_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or "." not in key:
        raise BakegenError(f"--set {text!r}: expected PATTERN.KEY=VALUE, e.g. '*.platform=linux/amd64'")
    return key, value
