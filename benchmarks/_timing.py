"""Timing helpers shared by the benchmarks: whole processes, interleaved, median of N."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence


def time_command(argv: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def compare(commands: Mapping[str, Sequence[str]], runs: int, **kwargs: object) -> dict[str, float]:
    """Median seconds per command; runs alternate between the commands so drift hits both alike."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            samples[name].append(time_command(argv, **kwargs))  # type: ignore[arg-type]
    return {name: statistics.median(values) for name, values in samples.items()}
