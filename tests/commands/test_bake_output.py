"""How `bake` and `smoke` look, on a tiny real build: live view in a pseudo-terminal, plain log through a pipe,
-q, --json (parsed), smoke's results once and aligned, -k and -x."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import clean_env, remove_images, write_spec

pytestmark = pytest.mark.docker

BASE_IMAGE = "bakegen-demo/debian:bookworm"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CHECKS = """\
checks:
  app:
    - {name: hello, entrypoint: [echo], command: [hello], run: {stdout: hello}}
    - {name: wrong-output, entrypoint: [echo], command: [bye], run: {stdout: hello}}
    - {name: os-release, file: /etc/os-release}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode != 0:
        pytest.skip(f"{BASE_IMAGE} is not in the engine (scripts/provision-docker.sh builds it)")
    directory = tmp_path_factory.mktemp("output")
    repository = f"localhost:5000/bakegen-out-{uuid.uuid4().hex[:8]}"
    write_spec(
        directory,
        f"version: 1\nimage: {{repository: {repository}}}\nstages: [app]\nvariants: {{cpu: {{dockerfile: Dockerfile, suffix: ''}}}}\n"
        + CHECKS,
    )
    (directory / "Dockerfile").write_text(f"FROM {BASE_IMAGE} AS app\nRUN echo {repository} > /built-by\n")
    yield directory
    remove_images(repository)


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in clean_env().items() if k not in ("CI", "NO_COLOR", "FORCE_COLOR", "TERM")}
    return {**base, "TERM": "xterm-256color", **extra}


def run(project: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bakegen", *args], cwd=project, env=env(**extra), capture_output=True, text=True, timeout=300
    )


def run_in_pty(project: Path, *args: str) -> tuple[int, str]:
    """The CLI with a pseudo-terminal as stdout and stderr, as a user's terminal would be."""
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "bakegen", *args], cwd=project, env=env(), stdin=secondary, stdout=secondary, stderr=secondary
    )
    os.close(secondary)
    chunks = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(main)
    return process.wait(timeout=30), b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_the_live_view_and_the_closing_line(project: Path) -> None:
    code, screen = run_in_pty(project, "bake", "--load")
    assert code == 0, screen
    assert "\x1b[" in screen  # drawn and coloured
    text = ANSI.sub("", screen)
    assert re.search(r"app-cpu\s+done\s+\d+\.\ds", text), text  # the target's row: state and elapsed time
    assert re.search(r"^1 built, 0 failed in \d+\.\d s\r?$", text, re.MULTILINE), text
    assert "[internal] load build definition" not in text  # the plain log is not shown


def test_a_pipe_gets_the_plain_log_without_colour(project: Path) -> None:
    result = run(project, "bake", "--load")
    assert result.returncode == 0, result.stderr
    assert "#1 [internal] load local bake definitions" in result.stderr
    assert "\x1b[" not in result.stderr + result.stdout
    assert re.search(r"^1 built, 0 failed in \d+\.\d s$", result.stderr, re.MULTILINE), result.stderr
    assert result.stdout.splitlines()[0].split() == ["TARGET", "TAGS", "PLATFORMS", "DIGEST", "SIZE", "SECONDS"]
    forced = run(project, "bake", "--load", FORCE_COLOR="1")
    assert "\x1b[32m1 built, 0 failed" in forced.stderr  # FORCE_COLOR colours a pipe


def test_quiet_prints_the_table_and_the_closing_line_only(project: Path) -> None:
    result = run(project, "bake", "--load", "-q")
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [result.stderr.splitlines()[-1]]
    assert result.stderr.startswith("1 built, 0 failed in ")
    assert len(result.stdout.splitlines()) == 2  # the header and the one target


def test_bake_json_is_one_document_on_stdout(project: Path) -> None:
    result = run(project, "bake", "--load", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "ok" and document["command"] == "bake"
    [target] = document["targets"]
    assert target["target"] == "app-cpu" and target["status"] == "built"
    assert target["platforms"] == [
        subprocess.run(["docker", "version", "-f", "{{.Server.Os}}/{{.Server.Arch}}"], capture_output=True, text=True).stdout.strip()
    ]
    [digest] = target["digests"]
    assert digest["kind"] == "image-id" and re.fullmatch(r"sha256:[0-9a-f]{64}", digest["digest"])
    assert isinstance(target["size"], int) and target["size"] > 0 and target["seconds"] >= 0
    assert "TARGET" in result.stderr  # the human table went to stderr


def test_smoke_results_once_aligned_and_as_json(project: Path) -> None:
    assert run(project, "bake", "--load", "-q").returncode == 0
    result = run(project, "smoke", "--json")
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    by_name = {c["name"]: c for c in document["checks"]}
    assert {n: c["status"] for n, c in by_name.items()} == {
        "app-cpu::hello": "passed", "app-cpu::wrong-output": "failed", "app-cpu::os-release": "passed",
    }  # fmt: skip
    assert all(c["image"].startswith("sha256:") and c["platform"].startswith("linux/") and c["seconds"] >= 0 for c in by_name.values())
    lines = [line for line in result.stderr.splitlines() if line.startswith(("PASS  ", "FAIL  ", "SKIP  "))]
    assert len(lines) == 3  # each result once
    assert len({line.index(" hello ") if " hello " in line else line.index(" os-release") for line in lines if "wrong" not in line}) == 1
    assert len({re.search(r"\d+\.\ds", line).start() for line in lines}) == 1  # type: ignore[union-attr]  # aligned seconds
    assert re.search(r"^2 passed, 1 failed, 0 skipped in \d+\.\d s$", result.stderr, re.MULTILINE)


def test_smoke_k_and_x(project: Path) -> None:
    assert run(project, "bake", "--load", "-q").returncode == 0
    only = json.loads(run(project, "smoke", "--json", "-k", "hello or release").stdout)
    assert sorted(c["name"] for c in only["checks"]) == ["app-cpu::hello", "app-cpu::os-release"]
    assert only["status"] == "ok"
    excluded = json.loads(run(project, "smoke", "--json", "-k", "not wrong and not hello").stdout)
    assert [c["name"] for c in excluded["checks"]] == ["app-cpu::os-release"]
    first = run(project, "smoke", "--json", "-x", "--jobs", "1", "-k", "wrong or release")
    assert first.returncode == 1
    assert [c["name"] for c in json.loads(first.stdout)["checks"]] == ["app-cpu::wrong-output"]  # stopped before os-release
    assert "stopping at the first failed check (-x)" in first.stderr
    nothing = run(project, "smoke", "-k", "nosuchcheck")
    assert nothing.returncode == 1 and "no check matches -k 'nosuchcheck'" in nothing.stderr
    bad = run(project, "smoke", "-k", "hello and")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_a_failed_build_is_counted_and_in_the_json(tmp_path: Path, project: Path) -> None:
    (tmp_path / "bakegen.yaml").write_text((project / "bakegen.yaml").read_text().split("checks:")[0])
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE} AS app\nRUN echo {uuid.uuid4().hex}; false\n")
    result = run(tmp_path, "bake", "--load", "--json")
    assert result.returncode == 1, result.stderr
    assert "bakegen: build failed (all): app-cpu" in result.stderr  # a failed build, not an engine fault
    assert re.search(r"^0 built, 1 failed in \d+\.\d s$", result.stderr, re.MULTILINE), result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "failed" and [t["status"] for t in document["targets"]] == ["failed"]
