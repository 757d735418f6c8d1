"""platforms.py: the OCI platform vocabulary."""

from __future__ import annotations

import pytest

from bakegen.platforms import platform_problem, platform_suffix


def test_platform_suffix() -> None:
    assert platform_suffix("linux/amd64") == "amd64"
    assert platform_suffix("linux/arm/v7") == "armv7"
    assert platform_suffix("windows/amd64") == "windows-amd64"


@pytest.mark.parametrize(
    ("platform", "problem"),
    [
        ("linux/amd64", None),
        ("linux/arm/v7", None),
        ("linux/s390x", None),
        ("linux/amd46", "unknown architecture 'amd46'"),
        ("plan9/amd64", "unknown OS 'plan9'"),
        ("linux/arm/v9", "unknown variant 'v9' for arm"),
        ("linux", "unknown architecture ''"),
        ("linux/arm/v7/x", "unknown variant 'v7/x'"),
    ],
)
def test_platform_problem(platform: str, problem: str | None) -> None:
    found = platform_problem(platform)
    assert found is None if problem is None else problem in (found or "")
