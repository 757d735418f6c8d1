"""Thin, typed wrappers around `docker buildx`: bake as a subprocess of its own, the rest through python-on-whales.

python-on-whales is imported inside the functions: `render` and friends never load it.
Its exceptions stop here: a failed build is a BakeOutcome, any other docker failure an EngineError.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakegen.errors import EngineError

# `#12 [server-cuda build 3/4] RUN ...`: bake's plain progress names the target first.
_VERTEX = re.compile(r"^#(\d+) \[([A-Za-z0-9_-]+)[ \]]")
_VERTEX_ERROR = re.compile(r"^#(\d+) ERROR: (.*)")
_FAILED_STEP = re.compile(r"^ > \[([A-Za-z0-9_-]+)[ \]]")
# With one target buildx leaves its name out: `#6 [2/2] RUN ...`, ` > [2/2] RUN ...`.
_UNNAMED_STEP = re.compile(r"^(?:#(\d+)| >) \[(?!internal\])")


@dataclass(frozen=True)
class BakeInvocation:
    """One `docker buildx bake` run, as `run_bake` executes it."""

    bake_file: Path
    targets: tuple[str, ...]
    cwd: Path
    variables: dict[str, str]
    push: bool = False
    load: bool = False
    overrides: tuple[tuple[str, str], ...] = ()
    builder: str | None = None
    metadata_file: Path | None = None
    no_cache: bool = False

    def argv(self) -> list[str]:
        """The command `run_bake` runs (in the plain progress mode), for --dry-run and error messages."""
        argv = ["docker", "buildx", "bake", "--progress", "plain", "--file", str(self.bake_file)]
        argv += ["--no-cache"] if self.no_cache else []
        argv += ["--builder", self.builder] if self.builder else []
        argv += ["--load"] if self.load else []
        argv += ["--push"] if self.push else []
        for key, value in self.overrides:
            argv += ["--set", f"{key}={value}"]
        argv += ["--metadata-file", str(self.metadata_file)] if self.metadata_file else []
        return [*argv, *self.targets]

    def shell(self) -> str:
        """The command as one line a user can paste: variables first, then the argv."""
        assignments = [f"{name}={shlex.quote(value)}" for name, value in sorted(self.variables.items())]
        return " ".join([*assignments, shlex.join(self.argv())])


@dataclass
class TargetLog:
    """What the streamed log says about one target."""

    first_seen: float = 0.0
    last_seen: float = 0.0
    failed: bool = False
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=25))

    @property
    def seconds(self) -> float:
        return max(0.0, self.last_seen - self.first_seen)


@dataclass
class BakeOutcome:
    ok: bool
    targets: dict[str, TargetLog]
    metadata: dict[str, Any]
    error: str = ""

    @property
    def failed_targets(self) -> list[str]:
        return sorted(name for name, log in self.targets.items() if log.failed)


def run_bake(invocation: BakeInvocation, echo: Callable[[str], None], progress: str = "plain") -> BakeOutcome:
    """Run bake with live logs; attribute log lines, durations and failures to targets.

    buildx runs in a process group of its own: a Ctrl-C on the terminal reaches bakegen alone, and bakegen
    stops the whole group (`docker` and its `docker-buildx` plugin) and waits for it before it says
    "interrupted", so no buildx goes on building, or pushing, behind its back. `progress` is buildx's own
    --progress: plain (parsed into targets) or rawjson (passed through)."""
    logs: dict[str, TargetLog] = defaultdict(TargetLog)
    vertex_target: dict[str, str] = {}
    errors: list[str] = []
    tail: deque[str] = deque(maxlen=5)
    argv = invocation.argv()
    if progress != "plain":
        argv[argv.index("--progress") + 1] = progress
    try:
        process = subprocess.Popen(
            argv, cwd=invocation.cwd, env={**os.environ, **invocation.variables}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1, start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        raise EngineError(f"docker buildx bake: {exc.strerror or exc}") from None
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            if line.startswith("ERROR: "):  # buildx's final error: reported once, at the end
                errors.append(line.removeprefix("ERROR: "))
            else:
                echo(line)
            if line.strip():
                tail.append(line.strip())
            _attribute(line, time.monotonic(), logs, vertex_target, sole=invocation.targets[0] if len(invocation.targets) == 1 else "")
        returncode = process.wait()
    except BaseException:
        stop_process_group(process)
        raise
    finally:
        if process.stdout is not None:
            process.stdout.close()
    error = (errors[-1] if errors else (tail[-1] if tail else f"exit code {returncode}")) if returncode else ""
    metadata: dict[str, Any] = {}
    if invocation.metadata_file and invocation.metadata_file.is_file() and not error:
        metadata = json.loads(invocation.metadata_file.read_text() or "{}")
    if error and not logs:
        # Nothing was built at all: no engine, no builder. A fault, not a failed build.
        raise EngineError(f"docker buildx bake: {error}")
    if error and not any(log.failed for log in logs.values()):
        # No step failed (e.g. the push or the bake file was refused): every target failed.
        for name in invocation.targets:
            logs[name].failed = True
    return BakeOutcome(ok=not error, targets=dict(logs), metadata=metadata, error=error)


def stop_process_group(process: subprocess.Popen[str], grace: float = 5.0) -> None:
    """Stop a child started with start_new_session=True and everything in its group, and wait for them.

    SIGINT first, as a Ctrl-C would have been: buildx cancels the build in the engine and exits.
    Whatever is still there after `grace` seconds (or on a second Ctrl-C) gets SIGKILL."""
    group = process.pid
    for signum in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(group, signum)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        try:
            while time.monotonic() < deadline:
                process.poll()
                if process.returncode is not None and not _group_alive(group):
                    return
                time.sleep(0.05)
        except KeyboardInterrupt:  # a second Ctrl-C: no more waiting
            continue
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)


def _group_alive(group: int) -> bool:
    """Whether a process group still has a live (not zombie) member."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


def _attribute(line: str, now: float, logs: dict[str, TargetLog], vertex_target: dict[str, str], sole: str = "") -> None:
    match = _VERTEX.match(line)
    unnamed = _UNNAMED_STEP.match(line) if sole else None
    if match and match.group(2) != "internal":
        vertex, target = match.groups()
        vertex_target[vertex] = target
    elif unnamed:
        vertex, target = unnamed.group(1) or "", sole
        if vertex:
            vertex_target[vertex] = target
        else:  # ` > [2/2] RUN ...`: buildx's excerpt of the step that failed
            logs[target].failed = True
    else:
        vertex = line.split(" ", 1)[0][1:] if line.startswith("#") else ""
        target = vertex_target.get(vertex, "")
    failed_step = _FAILED_STEP.match(line)
    if failed_step:
        target = failed_step.group(1)
        logs[target].failed = True
    if not target:
        return
    log = logs[target]
    log.first_seen = log.first_seen or now
    log.last_seen = now
    log.lines.append(line)
    if _VERTEX_ERROR.match(line):
        log.failed = True


@contextmanager
def _engine_faults(what: str) -> Iterator[None]:
    """python-on-whales' errors become one EngineError line: what failed, and docker's last word."""
    from python_on_whales.exceptions import DockerException

    try:
        yield
    except DockerException as exc:
        raise EngineError(f"{what}: {last_line(exc)}") from None


def last_line(exc: Exception) -> str:
    """The line of a docker error that says what went wrong (docker prints it last)."""
    lines = [line.strip() for line in (getattr(exc, "stderr", None) or str(exc)).splitlines() if line.strip()]
    return lines[-1].removeprefix("ERROR: ") if lines else type(exc).__name__


def builder_driver(builder: str | None) -> str:
    from python_on_whales import docker

    with _engine_faults("docker buildx inspect"):
        return str(docker.buildx.inspect(builder).driver)


def native_platform() -> str:
    """The engine's platform. A local engine (no DOCKER_HOST or context) runs on this machine,
    so its architecture is known without a docker call; otherwise the engine is asked."""
    import platform

    arches = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm/v7"}
    if not os.environ.get("DOCKER_HOST") and os.environ.get("DOCKER_CONTEXT", "default") == "default" and platform.system() == "Linux":
        return f"linux/{arches.get(platform.machine(), platform.machine())}"
    answer = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"], capture_output=True, text=True, check=False
    )
    return answer.stdout.strip() or "linux/amd64"


def image_sizes(references: list[str]) -> dict[str, int]:
    """Sizes of images in the local engine, by tag, from one `docker image inspect`; absent ones are left out."""

    if not references:
        return {}
    # One call for all: with a format, inspect prints what it found even if one is missing.
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .RepoTags}} {{.Size}}", *references], capture_output=True, text=True, check=False
    )
    sizes: dict[str, int] = {}
    for line in result.stdout.splitlines():
        tags_json, _, size = line.rpartition(" ")
        for tag in json.loads(tags_json or "[]"):
            sizes[tag] = int(size)
    return sizes


def imagetools_create(tags: list[str], sources: list[str], annotations: dict[str, str], builder: str | None = None) -> None:
    """Publish one multi-platform index under `tags` from `sources` (REPO@DIGEST), with index annotations."""
    argv = imagetools_create_argv(tags, sources, annotations, builder)
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise EngineError(f"docker buildx imagetools create {tags[0] if tags else ''}: {last_line(Exception(result.stderr))}")


def imagetools_create_argv(tags: list[str], sources: list[str], annotations: dict[str, str], builder: str | None = None) -> list[str]:
    argv = ["docker", "buildx", "imagetools", "create", *(["--builder", builder] if builder else [])]
    argv += [f"--annotation=index:{key}={value}" for key, value in sorted(annotations.items())]
    return [*argv, *(f"--tag={t}" for t in tags), *sources]


def imagetools_raw(reference: str) -> bytes | None:
    """A manifest or index exactly as the registry stores it (`imagetools inspect --raw`); None when absent."""
    result = subprocess.run(["docker", "buildx", "imagetools", "inspect", "--raw", reference], capture_output=True, check=False)
    if result.returncode != 0:
        error = result.stderr.decode(errors="replace")
        if "not found" in error.lower():
            return None
        raise EngineError(f"docker buildx imagetools inspect {reference}: {last_line(Exception(error))}")
    return bytes(result.stdout)


def index_platforms(raw: bytes) -> list[str]:
    """The platforms an index (or a single manifest) holds; attestation manifests are left out."""
    document = json.loads(raw)
    platforms = []
    for entry in document.get("manifests", []):
        platform = entry.get("platform") or {}
        if platform.get("os") in (None, "unknown"):
            continue
        variant = f"/{platform['variant']}" if platform.get("variant") else ""
        platforms.append(f"{platform['os']}/{platform['architecture']}{variant}")
    return platforms


def imagetools_platforms(reference: str) -> list[str]:
    """The platforms of a manifest list in a registry."""
    raw = imagetools_raw(reference)
    return index_platforms(raw) if raw else []
