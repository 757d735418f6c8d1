"""Size budgets and size changes: the spec's keys, the plan, and `bake --push` against the real registry."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from bakegen.errors import BakegenError
from bakegen.planner import build_plan, parse_size
from bakegen.spec import load_spec
from bakegen.unchanged import size_change
from tests.conftest import Runner, registry_tags, write_spec
from tests.test_unchanged import SPEC, project


@pytest.mark.parametrize(
    ("text", "size"), [(1234, 1234), ("50MiB", 50 * 1024**2), ("1.5 GB", 1_500_000_000), ("3kB", 3000), ("10B", 10), ("2 GiB", 2 * 1024**3)]
)
def test_sizes_read_with_their_units(text: int | str, size: int) -> None:
    assert parse_size(text) == size


def test_budgets_per_stage_per_variant_and_per_variant_stage(tmp_path: Path) -> None:
    spec = SPEC.replace(
        "variants:\n  a: {dockerfile: a.Dockerfile,",
        "size-budget: {full: 300MiB, light: 100MiB}\nvariants:\n  a: {size-budget: {light: 20MiB}, dockerfile: a.Dockerfile,",
    ).replace("b: {dockerfile", "b: {size-budget: 1GB, dockerfile")
    plan, problems = build_plan(load_spec(write_spec(tmp_path, spec)))
    assert problems == []
    budgets = {target.name: target.size_budget for target in plan.targets}
    assert budgets == {"full-a": 300 * 1024**2, "light-a": 20 * 1024**2, "full-b": 10**9, "light-b": 10**9}
    plain, _ = build_plan(load_spec(write_spec(tmp_path, SPEC)))
    assert {target.size_budget for target in plain.targets} == {None}


def test_a_budget_for_an_unknown_stage_is_reported_where_it_is(tmp_path: Path) -> None:
    spec = SPEC.replace("variants:\n", "size-budget: {server: 1GB}\nvariants:\n")
    _, problems = build_plan(load_spec(write_spec(tmp_path, spec)))
    assert [str(problem) for problem in problems] == [
        f"{tmp_path / 'bakegen.yaml'}:7:15: size-budget.server: size budget for unknown stage 'server' (stages: full, light)"
    ]


def test_a_size_without_a_known_unit_is_a_schema_error(tmp_path: Path) -> None:
    spec = SPEC.replace("variants:\n", "size-budget: {full: 12 parsecs}\nvariants:\n")
    with pytest.raises(BakegenError, match=r"bakegen.yaml:7:\d+: size-budget.full"):
        load_spec(write_spec(tmp_path, spec))


def test_size_change_cells() -> None:
    assert size_change(3 * 1024**2, None) == "3.0 MiB (new)"
    assert size_change(3 * 1024**2, 3 * 1024**2) == "3.0 MiB (same)"
    assert size_change(3 * 1024**2, 2 * 1024**2) == "3.0 MiB (+1.0 MiB)"
    assert size_change(1024, 2048) == "1.0 KiB (-1.0 KiB)"


def summary_row(stdout: str) -> str:
    """light-b's row of the bake summary (the last table; the merge table comes before it)."""
    return [line for line in stdout.splitlines() if line.startswith("light-b ")][-1]


def index_digest(reference: str) -> str:
    raw = subprocess.run(["docker", "buildx", "imagetools", "inspect", "--raw", reference], capture_output=True, check=True).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@pytest.mark.docker
@pytest.mark.registry
def test_sizes_and_changes_in_the_summary_and_a_budget_below_the_size_fails_before_publishing(
    tmp_path: Path, bakegen: Runner, demo_rootfs: Path, registry_repository: str
) -> None:
    repo = registry_repository
    root = project(tmp_path / "p", demo_rootfs)
    push = ("bake", "--push", "--progress", "quiet", "--var", f"REPO={repo}", "light-b")
    first = bakegen(*push, cwd=root)
    assert first.returncode == 0, first.stderr
    row = summary_row(first.stdout)
    assert re.search(r"  \d+\.\d (KiB|MiB) \(new\)  ", row)  # a busybox root file system: about 1 MiB compressed
    published = index_digest(f"{repo}:light-b")

    unchanged = bakegen(*push, cwd=root)
    row = summary_row(unchanged.stdout)
    assert re.search(r"  \d+\.\d (KiB|MiB) \(same\)  ", row) and row.rstrip().endswith("unchanged")

    # A bigger image: a 300 KiB file of random bytes (gzip cannot shrink it) in the context it copies.
    (root / "app" / "blob.bin").write_bytes(hashlib.sha256(b"seed").digest() * (300 * 1024 // 32))
    grown = bakegen(*push, cwd=root)
    assert grown.returncode == 0, grown.stderr
    row = summary_row(grown.stdout)
    assert "(+" in row
    published = index_digest(f"{repo}:light-b")

    (root / "bakegen.yaml").write_text(SPEC.replace("variants:\n", "size-budget: {light: 100KiB}\nvariants:\n"))
    (root / "app" / "hello.txt").write_text("changed, so that it is built again\n")
    over = bakegen(*push, cwd=root)
    assert over.returncode == 1
    assert "bakegen: over the size budget; no tag was published:" in over.stderr
    assert "light-b (linux/amd64): " in over.stderr and "is over its size budget of 100.0 KiB (102400 bytes)" in over.stderr
    assert index_digest(f"{repo}:light-b") == published  # the tag still points to the last good image
    assert registry_tags(repo) == {"light-b"}
