"""Benchmark: `bakegen bake` against the seed's way and against raw `docker buildx bake`.

Run: .venv/bin/python benchmarks/bake_speed.py   (needs the engine: scripts/provision-docker.sh)

1. Cold build of every demo target (build cache pruned, images removed before each run):
   `bakegen bake --load` versus one `docker build --target ... -f ...` per image in
   sequence, the copy-pasted commands projects keep today. Ratio goal <= 0.5.
2. Warm cache: `bakegen bake --load` versus `docker buildx bake --load` on the same
   rendered file with the same variables. Overhead goal <= 10 %.
Runs alternate between the two sides so machine drift hits both alike.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import time_command

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo"
sys.path.insert(0, str(ROOT))
from bakegen import model  # noqa: E402
from bakegen.model import resolve  # noqa: E402
from bakegen.pipeline import compile_spec  # noqa: E402

REPO = "localhost:5000/bakegen-bench"
ENV = {k: v for k, v in os.environ.items() if k not in ("VERSION", "CUDA_VERSION")} | {"REPO": REPO}


def seed_commands() -> list[list[str]]:
    """One `docker build` per image, as hand-written scripts do (native platform)."""
    plan = compile_spec(str(DEMO / "bakegen.yaml"), quiet=True).plan
    plan = model.for_native(plan, "linux/amd64")
    values = plan.values(environ=ENV)
    commands = []
    for target in plan.targets:
        argv = ["docker", "build", "--quiet", "--target", target.stage, "-f", target.dockerfile, "--platform", target.platforms[0]]
        for name, value in target.args:
            argv += ["--build-arg", f"{name}={resolve(value, values)}"]
        for key, value in target.labels:
            argv += ["--label", f"{key}={value}"]
        for tag in plan.resolved_tags(target, values):
            argv += ["-t", tag]
        commands.append([*argv, target.context])
    return commands


def reset() -> None:
    subprocess.run(["docker", "builder", "prune", "-af"], capture_output=True, check=True)
    refs = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", REPO], capture_output=True, text=True).stdout.split()
    if refs:
        subprocess.run(["docker", "rmi", "-f", *refs], capture_output=True)


def seed_build() -> float:
    return sum(time_command(argv, cwd=str(DEMO), env=ENV) for argv in seed_commands())


def main() -> None:
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    subprocess.run(["bash", str(DEMO / "prepare-rootfs.sh")], check=True, capture_output=True)
    bakegen = [sys.executable, "-m", "bakegen", "bake", "--load", "--progress", "quiet"]
    subprocess.run([sys.executable, "-m", "bakegen", "render"], cwd=DEMO, check=True, capture_output=True, env=ENV)
    raw = ["docker", "buildx", "bake", "--load", "--progress", "plain", "-f", "docker-bake.hcl", "--set", "*.platform=linux/amd64"]

    cold_bakegen, cold_seed = [], []
    for _ in range(runs):
        reset()
        cold_bakegen.append(time_command(bakegen, cwd=str(DEMO), env=ENV))
        reset()
        cold_seed.append(seed_build())
    b, s = statistics.median(cold_bakegen), statistics.median(cold_seed)
    print(f"# cold build of all 12 demo targets, median of {runs} (cache pruned before each run)")
    print(f"bakegen bake --load                 {b:6.2f} s")
    print(f"12 x docker build, in sequence      {s:6.2f} s")
    print(f"ratio bakegen / sequential: {b / s:.2f} (goal <= 0.5)")

    warm_runs = max(7, runs * 2)
    time_command(raw, cwd=str(DEMO), env=ENV)  # warm the cache
    warm_bakegen, warm_raw = [], []
    for _ in range(warm_runs):
        warm_bakegen.append(time_command(bakegen, cwd=str(DEMO), env=ENV))
        warm_raw.append(time_command(raw, cwd=str(DEMO), env=ENV))
    b, r = statistics.median(warm_bakegen), statistics.median(warm_raw)
    print(f"\n# warm cache, median of {warm_runs}")
    print(f"bakegen bake --load                 {b:6.2f} s")
    print(f"docker buildx bake --load (same file) {r:6.2f} s")
    print(f"overhead: {100 * (b - r) / r:+.0f} % (goal <= 10 %)")


if __name__ == "__main__":
    main()
