"""Benchmark: the fixed cost of `bakegen bake` over raw `docker buildx bake` on the same file.

Run: .venv/bin/python benchmarks/bake_overhead.py   (needs the engine)

Warm cache, every demo image (native platform, --load): `bakegen bake --load` against
`docker buildx bake --load` on the file `bakegen render` wrote, with the same variables; runs alternate so
drift hits both alike. Reports the median of each and the difference in ms (goal <= 200 ms). bakegen's side
includes what it adds to a build: the spec, the render, python-on-whales, and the inputs digest of every image.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _demo import BAKEGEN, copy_demo, remove_images, unique_repository
from _timing import time_command

from bakegen.planner import build_plan
from bakegen.slices import for_native
from bakegen.spec import load_spec


def main() -> None:
    runs = int(os.environ.get("BENCH_RUNS", "7"))
    root = copy_demo()
    repository = unique_repository("overhead")
    env = {k: v for k, v in os.environ.items() if k not in ("VERSION", "CUDA_VERSION")} | {"REPO": repository}
    subprocess.run([*BAKEGEN, "render"], cwd=root, check=True, capture_output=True, env=env)
    bakegen = [*BAKEGEN, "bake", "--load", "--progress", "quiet"]
    # The same images on both sides: one per tag, the native platform (cpu's s390x source is not built natively).
    plan, _ = build_plan(load_spec(root / "bakegen.yaml"))
    names = [t.name for t in for_native(plan, "linux/amd64").targets]
    raw = ["docker", "buildx", "bake", "--load", "--progress", "quiet", "-f", "docker-bake.hcl", "--set", "*.platform=linux/amd64", *names]
    try:
        time_command(raw, cwd=str(root), env=env)  # warm the cache, both ways
        time_command(bakegen, cwd=str(root), env=env)
        samples: dict[str, list[float]] = {"bakegen": [], "raw": []}
        for _ in range(runs):
            samples["bakegen"].append(time_command(bakegen, cwd=str(root), env=env))
            samples["raw"].append(time_command(raw, cwd=str(root), env=env))
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)
        remove_images(repository)
    b, r = statistics.median(samples["bakegen"]), statistics.median(samples["raw"])
    print(f"# warm cache, every demo image (linux/amd64, --load), median of {runs}, alternating")
    print(f"bakegen bake --load                        {1000 * b:7.0f} ms")
    print(f"docker buildx bake --load (same file)      {1000 * r:7.0f} ms")
    print(f"overhead: {1000 * (b - r):+.0f} ms (goal <= 200 ms)")


if __name__ == "__main__":
    main()
