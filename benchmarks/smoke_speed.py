"""Benchmark: `bakegen smoke` of every demo image, parallel versus one check after another.

Run: .venv/bin/python benchmarks/smoke_speed.py   (needs the engine: scripts/provision-docker.sh)
Builds the demo once, then times `bakegen smoke --jobs 1` against `--jobs 2` and `--jobs 4`,
runs alternating, median of BENCH_RUNS (default 5).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import compare

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo"
ENV = {k: v for k, v in os.environ.items() if k not in ("VERSION", "CUDA_VERSION", "REPO")} | {"TESTCONTAINERS_RYUK_DISABLED": "true"}


def main() -> None:
    runs = int(os.environ.get("BENCH_RUNS", "5"))
    subprocess.run(["bash", str(DEMO / "prepare-rootfs.sh")], check=True, capture_output=True)
    bakegen = [sys.executable, "-m", "bakegen"]
    subprocess.run([*bakegen, "bake", "--load", "--progress", "quiet"], cwd=DEMO, env=ENV, check=True, capture_output=True)
    commands = {f"--jobs {n}": [*bakegen, "smoke", "--jobs", str(n)] for n in (1, 2, 4)}
    medians = compare(commands, runs, cwd=str(DEMO), env=ENV)
    print(f"# bakegen smoke, all 24 demo checks (23 run, 1 needs a GPU), median of {runs}")
    for name, seconds in medians.items():
        print(f"{name:10s} {seconds:6.2f} s")
    for n in (2, 4):
        print(f"ratio --jobs {n} / --jobs 1: {medians[f'--jobs {n}'] / medians['--jobs 1']:.2f}")


if __name__ == "__main__":
    main()
