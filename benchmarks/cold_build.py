"""Benchmark: a cold build of the whole demo matrix (12 images, native platform, compiled on Debian):
`bakegen bake --load` against the seed's way, one `docker build --target ... -f ...` per image in sequence.

Run: .venv/bin/python benchmarks/cold_build.py   (needs the engine: scripts/provision-docker.sh)

Both sides start from a cold cache in the same run, each with a base image of its own that no build used
before (see benchmarks/_demo.py: the shared machine's build cache is never pruned). Goal: ratio <= 0.6.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _demo import BAKEGEN, copy_demo, fresh_base, remove_images, seed_commands, unique_repository
from _timing import time_command


def main() -> None:
    root = copy_demo()
    repository = unique_repository("cold")
    bases = [fresh_base(), fresh_base()]
    try:
        bakegen = [
            *BAKEGEN,
            "bake",
            "--load",
            "--progress",
            "quiet",
            "--var",
            f"REPO={repository}",
            "--set",
            f"*.args.BASE_IMAGE={bases[0]}",
        ]
        bake_seconds = time_command(bakegen, cwd=str(root))
        remove_images(repository)
        commands = seed_commands(root, repository, bases[1])
        seed_seconds = sum(time_command(argv, cwd=str(root)) for argv in commands)
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)
        remove_images(repository, *bases)
    print(f"# cold build of the demo matrix ({len(commands)} images, linux/amd64), measured once each")
    print(f"bakegen bake --load                      {bake_seconds:7.1f} s")
    print(f"{len(commands)} x docker build --target, in sequence {seed_seconds:7.1f} s")
    print(f"ratio: {bake_seconds / seed_seconds:.2f} (goal <= 0.6)")


if __name__ == "__main__":
    main()
