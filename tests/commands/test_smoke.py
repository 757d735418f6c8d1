"""`bakegen smoke` against the real demo images, with testcontainers (Ryuk off)."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import (
    DEMO_DIR,
    Runner,
    clean_env,
    registry_tags,
    smoke_containers,
    unique_repository,
    write_spec,
)

pytestmark = pytest.mark.docker


def spec_for(repo: str, checks: str, stages: str = "[light, server, full]") -> str:
    """A spec whose images are the demo images built under `repo`."""
    return f"version: 1\nimage: {{repository: {repo}}}\nstages: {stages}\nvariants: {{cpu: {{dockerfile: none, suffix: ''}}}}\nchecks:\n{checks}"


def test_all_demo_checks_pass_and_junit(tmp_path: Path, bakegen: Runner, demo_images: str) -> None:
    junit = tmp_path / "smoke.xml"
    result = bakegen("smoke", "--var", f"REPO={demo_images}", "--jobs", "3", "--junit-xml", str(junit), cwd=DEMO_DIR)
    assert result.returncode == 0, result.stderr
    assert "23 passed, 0 failed, 1 skipped" in result.stderr
    assert re.search(
        r"^SKIP  light-cuda +linux/amd64  sha256:[0-9a-f]{12}  nvidia-smi +0.0s  requires a GPU; run with --gpus all$", result.stderr, re.M
    )
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("24", "0", "1")
    assert {(c.get("classname"), c.get("name")) for c in suite} >= {("server-cuda", "health"), ("light-cuda", "cuda-env")}
    assert smoke_containers() == []


def test_cuda_version_check_follows_the_variable(bakegen: Runner, demo_images: str) -> None:
    result = bakegen("smoke", "--var", f"REPO={demo_images}", "--cuda-version", "99.9", "light-cuda", cwd=DEMO_DIR)
    assert result.returncode == 1
    assert "env CUDA_VERSION: expected '99.9', got '12.4.0'" in result.stderr
    assert "label org.bakegen.demo.cuda-version: expected '99.9', got '12.4.0'" in result.stderr


def test_wrong_expectations_fail_with_expected_and_actual(tmp_path: Path, bakegen: Runner, demo_images: str) -> None:
    checks = """\
  light:
    - {name: exit, command: [--version], run: {exit-code: 3}}
    - {name: output, run: {stdout: "ACCELERATOR=cuda"}}
    - {name: missing-file, file: /app/nope}
"""
    write_spec(tmp_path, spec_for(demo_images, checks))
    result = bakegen("smoke", "light-cpu", cwd=tmp_path)
    assert result.returncode == 1
    assert "exit code: expected 3, got 0" in result.stderr
    assert "stdout: expected a match for /ACCELERATOR=cuda/, got 'ACCELERATOR=cpu" in result.stderr
    assert "| ACCELERATOR=cpu" in result.stderr  # the log tail
    assert "/app/nope does not exist in the image" in result.stderr
    assert "0 passed, 3 failed, 0 skipped" in result.stderr
    assert "Traceback" not in result.stderr
    assert smoke_containers() == []


def test_server_never_healthy_fails_after_timeout_with_log(tmp_path: Path, bakegen: Runner, demo_images: str) -> None:
    checks = "  server:\n    - {name: wrong-port, timeout: 3, command: [--port, '8081'], http: {port: 8080}}\n"
    write_spec(tmp_path, spec_for(demo_images, checks))
    started = time.monotonic()
    result = bakegen("smoke", "server-cpu", cwd=tmp_path)
    assert result.returncode == 1
    assert time.monotonic() - started >= 3
    assert "GET /health did not answer 200 within 3s" in result.stderr
    assert "| listening on 0.0.0.0:8081" in result.stderr
    assert smoke_containers() == []


def test_missing_entrypoint_fails_cleanly(tmp_path: Path, bakegen: Runner, demo_images: str) -> None:
    checks = "  full:\n    - {name: no-entrypoint, entrypoint: [/usr/bin/llama-nope], run: {}}\n"
    write_spec(tmp_path, spec_for(demo_images, checks))
    result = bakegen("smoke", "full-cpu", cwd=tmp_path)
    assert result.returncode == 1
    assert "container did not start:" in result.stderr and "llama-nope" in result.stderr
    assert "Traceback" not in result.stderr
    assert smoke_containers() == []


def test_missing_image_is_never_pulled(tmp_path: Path, bakegen: Runner) -> None:
    repo = unique_repository("absent")
    write_spec(tmp_path, spec_for(repo, "  light:\n    - {name: v, run: {}}\n    - {name: w, run: {}}\n"))
    result = bakegen("smoke", "light-cpu", cwd=tmp_path)
    assert result.returncode == 1
    # one message for the missing image, not one per check
    [line] = [line for line in result.stderr.splitlines() if "not in the local engine" in line]
    assert line == f"bakegen: not in the local engine (build with `bakegen bake --load`; never pulled): {repo}:light"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_no_container(tmp_path: Path, demo_images: str, sig: signal.Signals) -> None:
    checks = "  server:\n" + "".join(f"    - {{name: slow{i}, timeout: 60, http: {{port: 8080, path: /never}}}}\n" for i in range(3))
    write_spec(tmp_path, spec_for(demo_images, checks))
    process = subprocess.Popen(
        [sys.executable, "-m", "bakegen", "smoke", "--jobs", "2", "server-cpu"],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while len(smoke_containers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(smoke_containers()) == 2, "the checks never started their containers"
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 128 + sig  # 130 for SIGINT, 143 for SIGTERM
    assert "bakegen: interrupted" in stderr and "Traceback" not in stderr
    assert smoke_containers() == []


@pytest.mark.registry
def test_bake_smoke_push_pushes_nothing_when_a_check_fails(
    tmp_path: Path, bakegen: Runner, demo_rootfs: Path, registry_repository: str
) -> None:
    repo = registry_repository
    spec = (DEMO_DIR / "bakegen.yaml").read_text().replace("localhost:5000/bakegen-demo", repo)
    spec = spec.replace('stderr: "^version: 1 \\\\(bakegen demo"', 'stderr: "^version: 2"')
    assert "version: 2" in spec
    (tmp_path / "gate.yaml").write_text(f"context: {DEMO_DIR}\n" + spec)
    result = bakegen("bake", "-f", "gate.yaml", "--push", "--smoke", "--platform", "linux/amd64", "light-cpu", "light-musa", cwd=tmp_path)
    assert result.returncode == 1
    assert "smoke checks failed; nothing was pushed" in result.stderr
    assert registry_tags(repo) == set()
    passing = bakegen("bake", "-f", "gate.yaml", "--push", "--smoke", "server-cuda", cwd=tmp_path)
    assert passing.returncode == 0, passing.stderr
    assert registry_tags(repo) == {"server-cuda", "server-cuda12"}


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine runs the check for real")
def test_gpus_all_sends_a_device_request(bakegen: Runner, demo_images: str) -> None:
    # Without a GPU the engine refuses the request: that it answers so shows the request arrived.
    result = bakegen("smoke", "--var", f"REPO={demo_images}", "--gpus", "all", "light-cuda", cwd=DEMO_DIR)
    assert result.returncode == 1
    assert "nvidia-smi" in result.stderr and 'could not select device driver "" with capabilities: [[gpu]]' in result.stderr
    assert smoke_containers() == []
