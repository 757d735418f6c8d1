"""Emit the GitHub Actions workflow (and its job matrix) that builds the plan on native runners.

One build job per (variant, platform) on the runner chosen for that platform: it runs
`bakegen bake --platform P --platform-tags --push --smoke` for its slice with a registry
cache per variant and arch; a merge job then publishes the multi-platform tags with
`bakegen merge` (docker buildx imagetools create). Deterministic: same spec, same bytes.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from bakegen import __version__
from bakegen.model import BuildPlan, Target
from bakegen.platforms import platform_suffix
from bakegen.slices import platforms_of
from bakegen.template import resolve

# Actions pinned to full commit SHAs (tags can move); the comment says which release.
PINNED_ACTIONS = {
    "actions/checkout": ("11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "actions/setup-python": ("0b93645e9fea7318ecaed2b359559ac225c90a2b", "v5.3.0"),
    "docker/setup-buildx-action": ("c47758b77c9736f4b2ef4073d4d51994fabfe349", "v3.7.1"),
    "docker/login-action": ("9780b0c442fbb1117ed29e0efdff1e18412f7567", "v3.3.0"),
}
# Large preinstalled toolchains on GitHub's Ubuntu runners; CUDA/ROCm images need the room.
FREE_DISK = "sudo rm -rf /usr/share/dotnet /usr/local/lib/android /opt/ghc /opt/hostedtoolcache/CodeQL\ndf -h /"


def uses(action: str) -> str:
    sha, _ = PINNED_ACTIONS[action]
    return f"{action}@{sha}"


def job_matrix(plan: BuildPlan, *, platform_split: bool = True) -> dict[str, list[dict[str, Any]]]:
    """The build matrix: one entry per (variant, platform), or per variant without the split."""
    values = plan.values({}, environ={})
    include: list[dict[str, Any]] = []
    variants = list(dict.fromkeys(t.variant for t in plan.targets))
    for variant in variants:
        targets = [t for t in plan.targets if t.variant == variant]
        platforms = platforms_of(targets)
        free_disk = any(t.free_disk for t in targets)
        if not platform_split:
            include.append({"variant": variant, "platforms": ",".join(platforms), "free-disk": free_disk})
            continue
        for platform in platforms:
            entry: dict[str, Any] = {
                "variant": variant,
                "platform": platform,
                "arch": platform_suffix(platform),
                "runner": plan.workflow.runner(platform),
                "free-disk": free_disk,
            }
            entry.update(_cache_settings(plan, targets[0], platform, values))
            include.append(entry)
    return {"include": include}


def _cache_settings(plan: BuildPlan, target: Target, platform: str, values: dict[str, str]) -> dict[str, str]:
    """Per variant and arch, so amd64 and arm64 runners do not overwrite each other's cache."""
    if target.cache is None:
        return {}
    cache = target.cache.per_arch(platform_suffix(platform), target.variant)
    return {"cache-from": resolve(cache.source(), values), "cache-to": resolve(cache.destination(), values)}


def render_workflow(plan: BuildPlan, spec_in_repo: str, output: str | None) -> str:
    settings = plan.workflow
    matrix = job_matrix(plan)
    values = plan.values({}, environ={})
    registry = plan.registry
    has_cache = any("cache-from" in entry for entry in matrix["include"])
    version_env = {settings.version_variable: "${{ github.ref_type == 'tag' && github.ref_name || '' }}"}
    if settings.version_variable not in values:
        version_env = {}

    triggers: dict[str, Any] = {"workflow_dispatch": None}
    if settings.schedule:
        triggers["schedule"] = [{"cron": settings.schedule}]
    if settings.tag_patterns:
        triggers["push"] = {"tags": list(settings.tag_patterns)}

    setup: list[dict[str, Any]] = [
        {"name": "Check out", "uses": uses("actions/checkout"), "with": {"persist-credentials": False}},
        {"name": "Set up Python", "uses": uses("actions/setup-python"), "with": {"python-version": "3.12"}},
        {"name": "Install bakegen", "run": settings.install or f'pip install "bakegen[docker]=={__version__}"'},
        {"name": "Set up buildx", "uses": uses("docker/setup-buildx-action")},
        {"name": "Log in to the registry", "uses": uses("docker/login-action"), "with": _login(registry)},
    ]
    bake = f"bakegen bake -f {spec_in_repo} ${{{{ matrix.variant }}}} --platform ${{{{ matrix.platform }}}} --platform-tags --push"
    bake += " --smoke" if settings.smoke else ""
    if has_cache:
        bake += ' --set "*.cache-from=${{ matrix.cache-from }}" --set "*.cache-to=${{ matrix.cache-to }}"'
    build_steps: list[dict[str, Any]] = [
        {"name": "Free disk space", "if": "matrix.free-disk", "run": FREE_DISK},
        *setup,
        {"name": "Build, smoke-test and push ${{ matrix.platform }}", "id": "bake", "env": dict(version_env), "run": bake},
    ]
    if not version_env:
        del build_steps[-1]["env"]
    merge_step: dict[str, Any] = {
        "name": "Publish multi-platform tags",
        "id": "merge",
        "env": dict(version_env),
        "run": f"bakegen merge -f {spec_in_repo}",
    }
    if not version_env:
        del merge_step["env"]
    job_permissions = {"contents": "read", "packages": "write"}
    document: dict[str, Any] = {
        "name": settings.name,
        "on": triggers,
        "concurrency": {"group": "${{ github.workflow }}-${{ github.ref }}", "cancel-in-progress": True},
        "permissions": {"contents": "read"},
        "jobs": {
            "build": {
                "name": "${{ matrix.variant }} ${{ matrix.platform }}",
                "runs-on": "${{ matrix.runner }}",
                "timeout-minutes": 360,
                "permissions": job_permissions,
                "strategy": {"fail-fast": False, "matrix": matrix},
                "steps": build_steps,
            },
            "merge": {
                "name": "Merge platforms",
                "needs": ["build"],
                "runs-on": plan.workflow.runner("linux/amd64"),
                "permissions": job_permissions,
                "steps": [*setup, merge_step],
            },
        },
    }
    text = yaml.dump(document, Dumper=_WorkflowDumper, sort_keys=False, width=1000, allow_unicode=True, default_flow_style=False)
    text = text.replace("workflow_dispatch: null", "workflow_dispatch:").replace("'on':", "on:", 1)
    text = re.sub(r"(uses: ([\w./-]+)@[0-9a-f]{40})", lambda m: f"{m.group(1)} # {PINNED_ACTIONS[m.group(2)][1]}", text)
    return _header(plan, output) + "\n" + text


class _WorkflowDumper(yaml.SafeDumper):
    """YAML as people write workflows: no anchors, indented lists, multi-line strings as blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_WorkflowDumper.add_representer(str, _represent_str)


def _login(registry: str) -> dict[str, str]:
    if registry == "ghcr.io":
        return {"registry": "ghcr.io", "username": "${{ github.actor }}", "password": "${{ secrets.GITHUB_TOKEN }}"}
    return {"registry": registry, "username": "${{ secrets.REGISTRY_USERNAME }}", "password": "${{ secrets.REGISTRY_PASSWORD }}"}


def _header(plan: BuildPlan, output: str | None) -> str:
    root = repo_root(output)
    spec = os.path.relpath(Path(plan.spec_path).resolve(), root.resolve())
    out = os.path.relpath(Path(output).resolve(), root.resolve()) if output else ".github/workflows/docker.yml"
    return (
        f"# Generated by bakegen from {spec}. Do not edit: change the spec, then regenerate with\n"
        f"#   bakegen workflow -f {spec} -o {out}\n"
        f"# One build job per variant and platform on native runners, then a merge job.\n"
    )


def repo_root(output: str | None) -> Path:
    """The repository a workflow belongs to: the folder holding .github/workflows/, else the cwd."""
    if output:
        path = Path(output).resolve()
        if path.parent.name == "workflows" and path.parent.parent.name == ".github":
            return path.parent.parent.parent
    return Path.cwd()


def matrix_json(plan: BuildPlan, *, platform_split: bool) -> str:
    return json.dumps(job_matrix(plan, platform_split=platform_split), sort_keys=True, separators=(",", ":"))
