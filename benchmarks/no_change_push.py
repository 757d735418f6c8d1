"""Benchmark: the "fresh CI runner" rebuild with nothing changed, and a one-Dockerfile change.

Run: .venv/bin/python benchmarks/no_change_push.py   (needs the engine and the registry on 127.0.0.1:5000)

1. Cold push of the whole demo matrix (both platforms, arm64 under QEMU) to a new repository, from a base
   image no build used before (benchmarks/_demo.py).
2. Wipe the images of that repository from the engine (a fresh runner has none), push again with nothing
   changed: time against step 1 (goal <= 10 %), manifests the registry received (goal: none), images built.
3. Change one Dockerfile (a comment in cuda.Dockerfile): which images are built again (goal: the cuda ones).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _demo import BAKEGEN, copy_demo, delete_repository, fresh_base, registry_revisions, remove_images, unique_repository


def push(root: Path, repository: str, base: str) -> tuple[float, str]:
    argv = [*BAKEGEN, "bake", "--push", "--progress", "quiet", "--var", f"REPO={repository}", "--set", f"*.args.BASE_IMAGE={base}"]
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=root, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"bakegen bake --push failed:\n{result.stderr[-3000:]}")
    return seconds, result.stdout


def built(stdout: str) -> list[str]:
    """TARGET@PLATFORM of the summary rows that were built (not `unchanged`)."""
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("TARGET ") and line.rstrip().endswith("SECONDS"))
    rows = [line.split() for line in lines[start + 1 :] if line.strip()]
    return [f"{row[0]}@{next(c for c in row if c.startswith('linux/'))}" for row in rows if row[-1] != "unchanged"]


def main() -> None:
    root = copy_demo()
    repository = unique_repository("nochange")
    base = fresh_base()
    try:
        cold, first = push(root, repository, base)
        images = len(built(first))
        before = registry_revisions(repository)
        remove_images(repository)
        again, second = push(root, repository, base)
        new_manifests = registry_revisions(repository) - before
        rebuilt = built(second)
        with (root / ".devops" / "cuda.Dockerfile").open("a") as dockerfile:
            dockerfile.write("# a change\n")
        remove_images(repository)
        changed, third = push(root, repository, base)
        after_change = built(third)
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)
        remove_images(repository, base)
        delete_repository(repository)
    print(f"# the demo matrix pushed ({images} images, linux/amd64 + linux/arm64 under QEMU), measured once each")
    print(f"cold push                                   {cold:7.1f} s")
    print(f"fresh runner, nothing changed               {again:7.1f} s   ratio {again / cold:.3f} (goal <= 0.10)")
    print(f"  images built: {len(rebuilt)}, manifests the registry received: {len(new_manifests)} (goal: 0 and 0)")
    print(f"one Dockerfile changed (cuda)               {changed:7.1f} s   built: {', '.join(sorted(after_change)) or 'nothing'}")


if __name__ == "__main__":
    main()
