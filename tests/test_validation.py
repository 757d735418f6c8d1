"""validation.py: the semantic checks a schema cannot make.

The hostile specs are the corpus files tests/corpus/semantic-*.yaml (the format of
tests/test_corpus.py: `# at: LINE:COL`, `# error: text`, `# exit: N` before the spec). Here each
runs through load_spec -> build_plan -> semantic_problems directly, so a case fails on the
check itself; test_corpus.py runs the same files through the CLI.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bakegen.errors import BakegenError, Diagnostic
from bakegen.planner import build_plan
from bakegen.spec import load_spec
from bakegen.validation import docker_reads, reference_problem, repository_problem, semantic_problems
from tests.conftest import DEMO_DIR, LLAMA_SPEC, Runner, clean_env, write_spec

CORPUS = Path(__file__).resolve().parent / "corpus"
CASES = sorted(CORPUS.glob("semantic-*.yaml"))


def expectations(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].strip().partition(":")
        if sep and key in ("at", "error", "exit"):
            found.setdefault(key, []).append(value.strip())
    return found


def all_problems(path: Path) -> list[Diagnostic]:
    """What validate reports: schema errors, else the planner's and the semantic checks' problems."""
    try:
        spec = load_spec(path)
    except BakegenError as exc:
        return exc.diagnostics
    plan, problems = build_plan(spec)
    return problems + semantic_problems(spec, plan)


def test_there_are_enough_hostile_cases() -> None:
    assert len([c for c in CASES if expectations(c).get("exit", ["2"]) == ["2"]]) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.stem.removeprefix("semantic-") for c in CASES])
def test_case(case: Path) -> None:
    expected = expectations(case)
    problems = [p for p in all_problems(case) if "does not exist" not in p.message]  # no Dockerfiles in the corpus
    shown = "\n".join(str(p) for p in problems)
    errors = [p for p in problems if p.severity == "error"]
    if expected.get("exit", ["2"]) == ["0"]:
        assert not errors, shown
    else:
        assert errors, shown
    if "at" in expected:
        line, column = (int(n) for n in expected["at"][0].split(":"))
        here = [str(p) for p in problems if (p.line, p.column) == (line, column)]
        for text in expected.get("error", []):
            assert any(text in p for p in here), f"no problem at {line}:{column} says {text!r}:\n{shown}"


def test_one_problem_per_place_in_position_order(tmp_path: Path) -> None:
    # Four targets break tags[0], two break each of the cuda suffixes: one line for each place.
    spec = load_spec(
        write_spec(
            tmp_path,
            "version: 1\nimage: {repository: example.com/app}\nstages: [full, server]\ntags: ['{stage} x', '{stage}{suffix}']\n"
            "variants:\n  cpu: {dockerfile: D, suffix: ''}\n  cuda: {dockerfile: D, suffix: ' cuda', aliases: [/x]}\n",
        )
    )
    problems = semantic_problems(spec, build_plan(spec)[0])
    expected = [(4, 8, "tags[0]"), (7, 33, "variants.cuda.suffix"), (7, 52, "variants.cuda.aliases[0]")]
    assert [(p.line, p.column, p.path) for p in problems] == expected


@pytest.mark.parametrize("spec_path", [LLAMA_SPEC, DEMO_DIR / "bakegen.yaml"], ids=["llama.cpp", "demo"])
def test_the_examples_have_no_semantic_problems(spec_path: Path) -> None:
    spec = load_spec(spec_path)
    assert semantic_problems(spec, build_plan(spec)[0]) == []


DOCKER_READS = [
    ("DOCKER_CONFIG", True),
    ("DOCKER_HOST", True),
    ("docker_host", True),  # Windows' environment ignores case
    ("BUILDX_CONFIG", True),
    ("BUILDKIT_PROGRESS", True),
    ("PATH", True),
    ("HOME", True),
    ("LD_PRELOAD", True),
    ("LD_AUDIT", True),
    ("http_proxy", True),
    ("NO_PROXY", True),
    ("SSL_CERT_FILE", True),
    ("XDG_CONFIG_HOME", True),
    ("GIT_SSH_COMMAND", True),
    ("GITHUB_ENV", True),
    ("RUNNER_TEMP", True),
    ("ACTIONS_RUNTIME_TOKEN", True),
    ("PYTHONSTARTUP", True),
    ("BASH_ENV", True),
    ("BASH_FUNC_x%%", True),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", True),
    ("EXPERIMENTAL_BUILDKIT_SOURCE_POLICY", True),
    ("CUDA_VERSION", False),
    ("VERSION", False),
    ("REPO", False),
    ("MY_PROXY", False),
    ("PATHS", False),
    ("GO_VERSION", False),
    ("SOURCE_DATE_EPOCH", False),  # read by buildx, and meant to be: it is a build setting, not the host's
]


@pytest.mark.parametrize(("name", "read"), DOCKER_READS)
def test_docker_reads(name: str, read: bool) -> None:
    assert docker_reads(name) is read


REPOSITORIES = [
    ("example.com/app", None),
    ("ghcr.io/ggml-org/llama.cpp", None),
    ("localhost:5000/demo", None),
    ("127.0.0.1:5000/a/b__c/d--e", None),
    ("Registry.Example.com/app", None),  # a host may have uppercase letters, a path may not
    ("app", None),
    ("example.com:5000", "a registry needs an image path after it"),
    ("example.com/App", "'App' has uppercase letters"),
    ("example.com/a..b", "'a..b' is not a path component"),
    ("example.com/a._b", "'a._b' is not a path component"),
    ("example.com/-a", "'-a' is not a path component"),
    ("my_host.local/app", "'my_host.local' is not a registry host"),
    ("example.com//app", "'' is not a path component"),
    ("example.com/" + "a" * 250, "Docker allows 255"),
]


@pytest.mark.parametrize(("repository", "problem"), REPOSITORIES)
def test_repository_problem(repository: str, problem: str | None) -> None:
    found = repository_problem(repository)
    assert found is None if problem is None else problem in (found or ""), found


REFERENCES = [
    ("example.com/app:v1.2_3", None),
    ("localhost:5000/demo:buildcache-cpu", None),
    ("localhost:5000/demo", None),
    ("example.com:5000", None),  # the image example.com, tag 5000: why a repository cannot be host:port alone
    ("example.com/app:-x", "tag '-x' is not valid"),
    ("example.com/app:" + "a" * 129, "is not valid"),
    ("example.com/app:a:b", "':' may only follow a registry host"),
    ("example.com/App:v1", "'App' has uppercase letters"),
]


@pytest.mark.parametrize(("reference", "problem"), REFERENCES)
def test_reference_problem(reference: str, problem: str | None) -> None:
    found = reference_problem(reference)
    assert found is None if problem is None else problem in (found or ""), found


# -- a spec can never run code on the host --

PLUGIN = "#!/bin/sh\ntouch '{marker}'\nexit 0\n"
HOSTILE = {
    "DOCKER_CONFIG": "./cfg",  # docker runs ./cfg/cli-plugins/docker-buildx
    "BUILDX_CONFIG": "./cfg",  # builders (and so where the build context goes) from the repository
    "DOCKER_HOST": "unix://./cfg/docker.sock",  # the whole build, context and credentials, to another engine
    "PATH": "./cfg/cli-plugins:/usr/bin:/bin",  # credential helpers (docker-credential-*) from the repository
}


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A repository with a fake buildx plugin that leaves a marker file if anything runs it."""
    repo = tmp_path / "repo"
    plugins = repo / "cfg" / "cli-plugins"
    plugins.mkdir(parents=True)
    for name in ("docker-buildx", "docker-credential-desktop", "docker"):
        (plugins / name).write_text(PLUGIN.format(marker=tmp_path / "MARKER"))
        (plugins / name).chmod(0o755)
    (repo / "Dockerfile").write_text("FROM scratch AS full\n")
    return repo


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("command", [["validate"], ["bake", "--dry-run"], ["bake"], ["render", "-o", "-"]])
def test_a_spec_cannot_set_docker_environment(bakegen: Runner, planted: Path, name: str, command: list[str]) -> None:
    spec = "version: 1\nimage: {repository: example.com/app}\nstages: [full]\nvariants: {cpu: {dockerfile: Dockerfile}}\n"
    spec += f"variables:\n  {name}: {{default: '{HOSTILE[name]}'}}\n"
    write_spec(planted, spec)
    result = bakegen(*command, cwd=planted, env=clean_env(BAKEGEN_NO_CACHE="1"))
    assert result.returncode == 2, result
    assert result.stderr.startswith(f"bakegen.yaml:6:3: variables.{name}: bake variable {name} would be passed to docker's environment")
    assert not (planted.parent / "MARKER").exists()
    assert result.stdout == ""


def test_the_planted_plugin_does_run_when_docker_gets_the_variable(planted: Path) -> None:
    """The premise of the test above: with DOCKER_CONFIG in its environment, docker runs the plugin."""
    import shutil
    import subprocess

    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on PATH")
    subprocess.run(["docker", "buildx", "version"], cwd=planted, env=clean_env(DOCKER_CONFIG="./cfg"), capture_output=True, timeout=60)
    assert (planted.parent / "MARKER").exists()
    os.remove(planted.parent / "MARKER")
