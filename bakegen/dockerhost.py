"""Is a Docker engine with buildx reachable? Asked by `make demo`, the tests and the runners.

`python -m bakegen.dockerhost` exits 0 when it is, 1 with the reason otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache

REGISTRY = "127.0.0.1:5000"


@cache
def unavailable_reason() -> str | None:
    """None when `docker` answers and has buildx; otherwise why not."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "docker info timed out"
    if info.returncode != 0 or not info.stdout.strip():
        return "no Docker engine answers (docker info failed)"
    buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True, timeout=20)
    if buildx.returncode != 0:
        return "docker buildx is not installed"
    return None


def registry_reachable(address: str = REGISTRY) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=3) as response:
            return bool(response.status == 200)
    except OSError:
        return False


if __name__ == "__main__":
    reason = unavailable_reason()
    print(reason or "docker engine and buildx available")
    sys.exit(1 if reason else 0)
