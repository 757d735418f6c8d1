"""Ctrl-C and SIGTERM stop everything bakegen started: the real CLI in a subprocess, signalled at several
points of its run. Asserted each time: the exit code (130 / 143), one "interrupted" line and no traceback,
no process left (buildx, or the build's own RUN, found by a marker unique to the try), no smoke container
left, and nothing in the registry, also a while after the exit (nothing is pushed after the signal)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import clean_env, registry_tags, remove_images, write_spec

pytestmark = [pytest.mark.docker, pytest.mark.registry]

BASE_IMAGE = "bakegen-demo/debian:bookworm"
# Delays count from the moment bakegen's own code runs (before that, the interpreter is starting, which no
# Python program can guard), or, with True, from the start of the build's slow RUN: while importing, parsing,
# starting buildx, and inside the RUN, where buildx writes nothing (so no broken pipe would stop it either).
BAKE_TRIES = [
    (0.0, signal.SIGINT, False), (0.3, signal.SIGTERM, False), (1.0, signal.SIGINT, False),
    (0.2, signal.SIGTERM, True), (1.0, signal.SIGINT, True),
]  # fmt: skip
# smoke: creating the session, starting the containers, the checks running.
SMOKE_TRIES = [(0.0, signal.SIGTERM), (0.3, signal.SIGINT), (0.8, signal.SIGTERM), (1.5, signal.SIGINT), (2.5, signal.SIGINT)]
EXPECTED_CODE = {signal.SIGINT: 130, signal.SIGTERM: 143}


def spec_text(repository: str) -> str:
    return (
        f"version: 1\nimage: {{repository: {repository}}}\nstages: [app]\n"
        "variants: {cpu: {dockerfile: Dockerfile, suffix: ''}}\n"
        "checks:\n  app:\n"
        + "".join(f"    - {{name: slow{i}, entrypoint: [sleep], command: ['30'], timeout: 60, run: {{exit-code: 0}}}}\n" for i in range(3))
    )


@pytest.fixture
def repository() -> Iterator[str]:
    if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode != 0:
        pytest.skip(f"{BASE_IMAGE} is not in the engine (scripts/provision-docker.sh builds it)")
    name = f"localhost:5000/bakegen-int-{uuid.uuid4().hex[:8]}"
    yield name
    remove_images(name)


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bakegen", *args], cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_until_bakegen_runs(process: subprocess.Popen[str]) -> None:
    """Until bakegen's first code has run: it catches SIGTERM from then on (SigCgt), which the interpreter alone does not."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        status = Path(f"/proc/{process.pid}/status").read_text()
        caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.01)
    raise AssertionError("bakegen never started")


def stop(process: subprocess.Popen[str], delay: float, sig: signal.Signals) -> tuple[int, str, float]:
    """Signal the run `delay` seconds from now; its exit code, stderr, and how long it took to exit after the signal."""
    time.sleep(delay)
    assert process.poll() is None, f"the run ended before the signal: {process.communicate()}"
    process.send_signal(sig)
    signalled = time.monotonic()
    try:
        _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    return process.returncode, stderr, time.monotonic() - signalled


def processes_with(marker: str) -> list[str]:
    """Every process whose command line holds the marker (bakegen itself, buildx, the RUN inside the engine)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in text and "pytest" not in text:
            found.append(f"{cmdline.parent.name}: {text}")
    return found


def wait_for_none(marker: str, seconds: float = 3.0) -> list[str]:
    """The engine reaps a cancelled RUN a moment after buildx returns: allow it that moment, no more."""
    deadline = time.monotonic() + seconds
    while (left := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_interrupted_bake_push_stops_buildx_and_pushes_nothing(tmp_path: Path, repository: str) -> None:
    write_spec(tmp_path, spec_text(repository))
    started = time.monotonic()
    for delay, sig, from_run in BAKE_TRIES:
        marker = f"bakegen-int-{uuid.uuid4().hex}"  # a fresh RUN each try: never a cache hit
        (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE} AS app\nRUN sleep 8; echo {marker}\n")
        process = start(tmp_path, "bake", "--push", "--set", f"*.labels.org.bakegen.test={marker}")
        wait_until_bakegen_runs(process)
        if from_run:
            deadline = time.monotonic() + 20
            while not any("sleep 8" in p for p in processes_with(marker)) and time.monotonic() < deadline:
                time.sleep(0.1)
        code, stderr, seconds = stop(process, delay, sig)
        where = f"signal {sig.name} {delay}s after {'the RUN started' if from_run else 'bakegen started'}"
        assert code == EXPECTED_CODE[sig], f"{where}: {stderr}"
        assert "Traceback" not in stderr, where
        assert [line for line in stderr.splitlines() if "interrupted" in line] == ["bakegen: interrupted"], f"{where}: {stderr}"
        assert seconds < 10, f"{where}: took {seconds:.1f}s to stop"
        assert wait_for_none(marker) == [], where
        assert in_registry(repository) == (False, set()), where
    time.sleep(3)  # a buildx left running would push by now
    assert in_registry(repository) == (False, set())
    assert time.monotonic() - started < 90


def test_interrupted_smoke_removes_its_containers_and_never_hangs(tmp_path: Path, repository: str) -> None:
    write_spec(tmp_path, spec_text(repository))
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE} AS app\n")
    built = subprocess.run(
        [sys.executable, "-m", "bakegen", "bake", "--load", "--progress", "quiet"], cwd=tmp_path, env=clean_env(),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    image = f"{repository}:app"
    started = time.monotonic()
    for delay, sig in SMOKE_TRIES:
        process = start(tmp_path, "smoke", "--jobs", "2")
        wait_until_bakegen_runs(process)
        code, stderr, seconds = stop(process, delay, sig)
        where = f"signal {sig.name} after {delay}s"
        assert code == EXPECTED_CODE[sig], f"{where}: {stderr}"
        assert "Traceback" not in stderr and "404" not in stderr, f"{where}: {stderr}"
        assert seconds < 12, f"{where}: took {seconds:.1f}s to stop"
        assert containers_of(image) == [], where
    assert time.monotonic() - started < 90


def containers_of(image: str) -> list[str]:
    """Smoke containers of this test's image (other runs on the machine have their own)."""
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=org.bakegen.smoke.session", "--filter", f"ancestor={image}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return listed.stdout.split()


def in_registry(repository: str) -> tuple[bool, set[str]]:
    """Whether the registry's catalog lists the repository (an untagged push by digest creates it), and its tags."""
    import json
    import urllib.request

    name = repository.split("/", 1)[1]
    listed, last = False, ""
    while not listed:  # the catalog comes in pages, in name order
        with urllib.request.urlopen(f"http://127.0.0.1:5000/v2/_catalog?n=100&last={last}", timeout=10) as response:
            page = json.load(response)["repositories"] or []
        listed = name in page
        if len(page) < 100 or page[-1] > name:
            break
        last = page[-1]
    return listed, registry_tags(repository)


def test_ctrl_c_on_a_terminal_stops_the_live_build(tmp_path: Path, repository: str) -> None:
    """A real Ctrl-C: the terminal sends SIGINT to its foreground process group, which buildx is not in."""
    write_spec(tmp_path, spec_text(repository))
    marker = f"bakegen-int-{uuid.uuid4().hex}"
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE} AS app\nRUN sleep 8; echo {marker}\n")
    main, secondary = pty.openpty()

    def on_the_terminal() -> None:  # a session of its own with the pty as its controlling terminal, as a shell gives
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    environ = {k: v for k, v in clean_env().items() if k not in ("CI", "TERM")} | {"TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bakegen", "bake", "--load"], cwd=tmp_path, env=environ,
        stdin=secondary, stdout=secondary, stderr=secondary, preexec_fn=on_the_terminal,
    )  # fmt: skip
    os.close(secondary)
    screen, pressed = b"", 0.0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if select.select([main], [], [], 0.2)[0]:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # EIO: the terminal's other side is closed
                    break
                screen += chunk
            elif process.poll() is not None:
                break
            if not pressed and any("sleep 8" in p for p in processes_with(marker)):
                time.sleep(0.5)
                os.write(main, b"\x03")  # Ctrl-C
                pressed = time.monotonic()
        code = process.wait(timeout=20)
    finally:
        process.kill()
        os.close(main)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode(errors="replace"))
    assert pressed, text
    assert code == 130, text
    assert "building" in text  # it was the live view that was interrupted
    assert text.rstrip().endswith("bakegen: interrupted") and "Traceback" not in text
    assert time.monotonic() - pressed < 12
    assert wait_for_none(marker) == []
