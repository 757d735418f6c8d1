"""Benchmark: `bakegen render` against `docker buildx bake --print`, and render growth.

Run: .venv/bin/python benchmarks/render_speed.py   (or `make bench`)

1. Whole-process time of `bakegen render` on the llama.cpp example versus
   `docker buildx bake --print` on the file it produced, side by side, as a ratio.
2. Whole-process render time for generated specs of 50, 500 and 5,000 targets.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import compare, time_command

ROOT = Path(__file__).resolve().parent.parent
BAKEGEN = [sys.executable, "-m", "bakegen"]


def generated_spec(targets: int) -> str:
    stages = 10 if targets >= 100 else 5
    variants = targets // stages
    lines = [
        "version: 1",
        "image: {repository: registry.example/matrix}",
        "variables: {VERSION: {default: ''}}",
        f"stages: [{', '.join(f's{i}' for i in range(stages))}]",
        "tags: ['{stage}{suffix}', '{stage}{suffix}-{VERSION}']",
        "labels: {org.opencontainers.image.source: https://example.invalid/matrix}",
        "variants:",
    ]
    for v in range(variants):
        lines += [
            f"  v{v}:",
            f"    dockerfile: docker/v{v % 7}.Dockerfile",
            "    platforms: [linux/amd64, linux/arm64]",
            f"    args: {{V{v}_VERSION: '1.{v}.0', SHARED: 'on'}}",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    runs = int(os.environ.get("BENCH_RUNS", "15"))
    env = {k: v for k, v in os.environ.items() if k not in ("VERSION", "REPO", "CUDA_VERSION")}
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(ROOT / "examples/llama.cpp/bakegen.yaml", Path(tmp) / "bakegen.yaml")
        render = [*BAKEGEN, "render", "-f", "bakegen.yaml", "-o", "docker-bake.hcl"]
        subprocess.run(render, cwd=tmp, check=True, capture_output=True, env=env)
        have_buildx = shutil.which("docker") and subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode == 0
        print(f"# render vs buildx bake --print, llama.cpp example (27 targets), median of {runs} interleaved runs")
        # Cold: BAKEGEN_NO_CACHE=1, every run imports jsonschema and compiles the template.
        # Warm: the spec's schema check and the compiled template are remembered (bakegen/cache.py).
        commands = {"bakegen render (cold)": ["env", "BAKEGEN_NO_CACHE=1", *render], "bakegen render (warm)": render}
        if have_buildx:
            commands["docker buildx bake --print"] = ["docker", "buildx", "bake", "-f", "docker-bake.hcl", "--print"]
        medians = compare(commands, runs, cwd=tmp, env=env)
        for name, seconds in medians.items():
            print(f"{name:30s} {seconds * 1000:8.1f} ms")
        if have_buildx:
            for kind in ("cold", "warm"):
                ratio = medians[f"bakegen render ({kind})"] / medians["docker buildx bake --print"]
                print(f"ratio render ({kind}) / bake --print: {ratio:.2f} (goal <= 2)")
        python_only = compare({"python -c pass": [sys.executable, "-c", "pass"]}, runs, env=env)["python -c pass"]
        print(f"(interpreter start-up alone: {python_only * 1000:.1f} ms)")

        print("\n# render growth: whole process, cold cache, generated specs (median of runs)")
        previous = None
        for targets in (50, 500, 5000):
            spec = Path(tmp) / f"gen{targets}.yaml"
            spec.write_text(generated_spec(targets))
            argv = ["env", "BAKEGEN_NO_CACHE=1", *BAKEGEN, "render", "-f", spec.name, "-o", f"gen{targets}.hcl"]
            seconds = sorted(time_command(argv, cwd=tmp, env=env) for _ in range(max(3, runs // 3)))[1]
            size = (Path(tmp) / f"gen{targets}.hcl").stat().st_size
            growth = f"  x{seconds / previous:.1f} for x10 targets" if previous else ""
            print(f"{targets:5d} targets  {seconds * 1000:8.1f} ms  {size / 1024:8.0f} KiB{growth}")
            previous = seconds


if __name__ == "__main__":
    main()
