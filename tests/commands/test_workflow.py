"""`bakegen workflow` and `bakegen matrix`: linted with real tools, checked against the spec, and the
generated steps' own scripts executed locally, as GitHub would run them, with `${{ }}` expanded from
fixture contexts: against a stub bakegen (what reaches it, that nothing injected runs) and against the
demo and the registry."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from bakegen import __version__
from bakegen.runners.buildx import imagetools_platforms
from bakegen.workflow import PINNED_ACTIONS
from tests.conftest import DEMO_DIR, LLAMA_SPEC, ROOT, Runner, clean_env, registry_tags, smoke_containers

BIN = Path(sys.executable).parent
LLAMA_PUBLISH = "github.event_name != 'pull_request' && github.repository == 'ggml-org/llama.cpp'"


def generate(bakegen: Runner, spec_dir: Path) -> str:
    result = bakegen("workflow", "-o", "-", cwd=spec_dir)
    assert result.returncode == 0, result.stderr
    return result.stdout


def write_repo(tmp_path: Path, spec_text: str, spec_dir: str = ".") -> Path:
    """A repository with a spec in `spec_dir` (beside an empty Dockerfile); returns the spec's path."""
    spec = tmp_path / "repo" / spec_dir / "bakegen.yaml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(spec_text, encoding="utf-8")
    return spec


def generate_into(bakegen: Runner, spec: Path, repo: Path) -> dict[str, Any]:
    """`bakegen workflow` into the repository's .github/workflows/docker.yml (and .github/actionlint.yaml)."""
    result = bakegen("workflow", "-f", str(spec), "-o", str(repo / ".github" / "workflows" / "docker.yml"))
    assert result.returncode == 0, result.stderr
    workflow: dict[str, Any] = yaml.safe_load((repo / ".github" / "workflows" / "docker.yml").read_text(encoding="utf-8"))
    return workflow


def lint(workflow: Path, config: Path) -> None:
    actionlint = subprocess.run(
        [str(BIN / "actionlint"), "-no-color", "-config-file", str(config), str(workflow)], capture_output=True, text=True
    )
    assert actionlint.returncode == 0, actionlint.stdout + actionlint.stderr
    schema = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)], capture_output=True, text=True
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr


def steps_of(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return steps


def step(workflow: dict[str, Any], job: str, step_id: str) -> dict[str, Any]:
    return next(s for s in steps_of(workflow, job) if s.get("id") == step_id)


# -- what GitHub does with a step: expressions from contexts, `if:`, the script in bash with env --

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
CONDITION_TOKEN = re.compile(r"'(?:[^']|'')*'|always\(\)|[A-Za-z_][\w-]*(?:\.[\w-]+)+|&&|\|\||==|!=|!|\(|\)")


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def expand(text: str, contexts: dict[str, dict[str, Any]]) -> str:
    """`${{ context.name }}` as GitHub substitutes it; anything else fails the test (the expander would lie)."""

    def value(match: re.Match[str]) -> str:
        context, _, name = match.group(1).partition(".")
        assert context in contexts and re.fullmatch(r"[\w-]+", name), f"cannot expand ${{{{ {match.group(1)} }}}}"
        return _text(contexts[context][name])

    return EXPRESSION.sub(value, text)


def condition(text: str, contexts: dict[str, dict[str, Any]]) -> bool:
    """The few `if:` forms the generator writes: ==, !=, &&, ||, !, (), always(), context.name, 'literals'."""
    tokens = CONDITION_TOKEN.findall(text)
    assert "".join(tokens) == text.replace(" ", ""), f"cannot evaluate if: {text}"
    python = []
    for token in tokens:
        if token.startswith("'"):
            python.append(repr(token[1:-1].replace("''", "'")))
        elif token in ("&&", "||", "!"):
            python.append({"&&": " and ", "||": " or ", "!": " not "}[token])
        elif token in ("==", "!=", "(", ")"):
            python.append(token)
        elif token == "always()":
            python.append("True")
        else:
            context, _, name = token.partition(".")
            python.append(repr(contexts[context][name]))
    return bool(eval("".join(python)))  # only the tokens above reach it


@dataclass
class Machine:
    """One job's machine: RUNNER_TEMP, GITHUB_OUTPUT/STEP_SUMMARY/PATH files, a PATH with stubs first."""

    root: Path
    github: dict[str, Any]
    environ: dict[str, str]
    temp: Path = field(init=False)

    def __post_init__(self) -> None:
        self.temp = self.root / "runner-temp"
        self.temp.mkdir(parents=True)
        for name in ("output", "summary", "path"):
            (self.root / name).touch()

    def run_job(
        self,
        workflow: dict[str, Any],
        job_name: str,
        matrix: dict[str, Any],
        cwd: Path,
        *,
        wanted: Callable[[dict[str, Any]], bool],
        failures: list[str] | None = None,
    ) -> list[str]:
        """Runs the job's `run:` steps that `wanted` picks, in order; returns the names of the steps run.
        A failed step fails the test, or with `failures` is recorded there and the job goes on."""
        job = workflow["jobs"][job_name]
        contexts: dict[str, dict[str, Any]] = {"matrix": matrix, "github": self.github, "runner": {"temp": str(self.temp)}}
        env = dict(self.environ) | {
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_OUTPUT": str(self.root / "output"),
            "GITHUB_STEP_SUMMARY": str(self.root / "summary"),
            "GITHUB_PATH": str(self.root / "path"),
            "GITHUB_ACTIONS": "true",
        }
        for layer in (workflow.get("env", {}), job.get("env", {})):
            env |= {name: expand(_text(value), contexts | {"env": env}) for name, value in layer.items()}
        ran = []
        for item in job["steps"]:
            if "run" not in item or not wanted(item):
                continue
            step_env = env | {name: expand(_text(value), contexts | {"env": env}) for name, value in item.get("env", {}).items()}
            added = [line for line in (self.root / "path").read_text().splitlines() if line]
            step_env["PATH"] = os.pathsep.join([*reversed(added), step_env["PATH"]])
            script = expand(item["run"], contexts | {"env": step_env})
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, env=step_env, capture_output=True, text=True
            )
            problem = f"{item['name']}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
            if failures is None:
                assert done.returncode == 0, problem
            elif done.returncode != 0:
                failures.append(problem)
            ran.append(str(item["name"]))
        return ran


def runs(item: dict[str, Any], github: dict[str, Any], matrix: dict[str, Any] | None = None) -> bool:
    return "if" not in item or condition(item["if"], {"github": github, "matrix": matrix or {}})


STUB_BAKEGEN = """\
#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(args) + "\\n")
if "--metadata-file" in args:
    path = args[args.index("--metadata-file") + 1]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write(os.environ["STUB_BAKE_METADATA"] if args[0] == "bake" else os.environ["STUB_MERGED"])
"""
STUB_LOGGING = '#!/bin/bash\nprintf "%s\\n" "$(basename "$0") $*" >> "$STUB_LOG"\n'
STUB_PYTHON = '#!/bin/bash\nif [ "$1" = -m ] && [ "$2" = venv ]; then mkdir -p "$3/bin"; exit 0; fi\nexec {python} "$@"\n'


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    """bakegen that records its argv and writes the metadata files; sudo, pip, docker that only record;
    python3 whose `-m venv` only makes the folder. Nothing a step runs can change this machine."""
    folder = tmp_path / "stubs"
    folder.mkdir()
    scripts = {"bakegen": STUB_BAKEGEN.format(python=sys.executable), "python3": STUB_PYTHON.format(python=sys.executable)}
    scripts |= dict.fromkeys(("sudo", "pip", "docker", "apt-get"), STUB_LOGGING)
    for name, text in scripts.items():
        (folder / name).write_text(text)
        (folder / name).chmod(stat.S_IRWXU)
    return folder


def stub_environ(stubs: Path, log: Path, targets: list[str], image: str) -> dict[str, str]:
    bake_metadata = {
        "full-cpu": {"containerimage.digest": "sha256:" + "a" * 64, "bakegen.size": str(3 * 2**20), "bakegen.smoke": "2 passed"},
        "light-cpu": {"containerimage.digest": "sha256:" + "b" * 64},
    }
    merged = {
        "images": [{"target": t, "name": image, "digest": f"sha256:{i:064x}", "tags": [f"{image}:{t}"]} for i, t in enumerate(targets)]
    }
    return clean_env(
        PATH=f"{stubs}{os.pathsep}{os.environ['PATH']}",
        STUB_LOG=str(log),
        STUB_BAKE_METADATA=json.dumps(bake_metadata),
        STUB_MERGED=json.dumps(merged),
    )


def logged_argv(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("[")]


LLAMA_VARIANTS = ("cpu", "cuda", "cuda13", "rocm", "musa", "vulkan", "intel", "openvino")
LLAMA_TARGETS = [f"{stage}-{variant}" for variant in LLAMA_VARIANTS for stage in ("full", "light", "server")]  # one list per tag
GITHUB_SCHEDULE = {
    "event_name": "schedule",
    "repository": "ggml-org/llama.cpp",
    "ref": "refs/heads/master",
    "ref_name": "master",
    "workflow": "Publish Docker images",
}


def publishing_run(github: dict[str, Any], entry: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    return lambda item: runs(item, github, entry)


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    on: dict[str, Any] = workflow[True]  # `on` reads as True in YAML 1.1
    return on


def run_publish(workflow: dict[str, Any], repo: Path, tmp_path: Path, environ: dict[str, str], github: dict[str, Any]) -> Machine:
    """Every build job, the digests carried to the merge job as the artifacts would, then the merge job."""
    digests: list[Path] = []
    for index, entry in enumerate(workflow["jobs"]["build"]["strategy"]["matrix"]["include"]):
        machine = Machine(tmp_path / f"build-{index}", github, environ)
        machine.run_job(workflow, "build", entry, repo, wanted=publishing_run(github, entry))
        digests += (machine.temp / "digests").glob("*.json")
    merge = Machine(tmp_path / "merge", github, environ)
    (merge.temp / "digests").mkdir()
    for path in digests:
        shutil.copy(path, merge.temp / "digests" / path.name)
    assert runs(workflow["jobs"]["merge"], github)
    merge.run_job(workflow, "merge", {}, repo, wanted=lambda s: runs(s, github))
    return merge


# -- lint --


S390X_SPEC = (LLAMA_SPEC.read_text().replace("cache:\n  type: registry", "cache:\n  type: gha")) + (
    "workflow:\n"
    "  runners: {linux/s390x: ubuntu-24.04-s390x}\n"
    "  python: {ubuntu-24.04-s390x: apt}\n"
    "  pull-request: {paths: [.devops/**, bakegen.yaml]}\n"
    "  attest: false\n"
)


@pytest.mark.parametrize("spec_dir", [LLAMA_SPEC.parent, DEMO_DIR, None], ids=["llama.cpp", "demo", "s390x-apt-gha"])
def test_generated_workflow_passes_actionlint_and_the_workflow_schema(tmp_path: Path, bakegen: Runner, spec_dir: Path | None) -> None:
    spec = write_repo(tmp_path, S390X_SPEC if spec_dir is None else (spec_dir / "bakegen.yaml").read_text())
    repo = spec.parent
    generate_into(bakegen, spec, repo)
    lint(repo / ".github" / "workflows" / "docker.yml", repo / ".github" / "actionlint.yaml")


def test_actionlint_config_names_the_labels_actionlint_does_not_know(tmp_path: Path, bakegen: Runner) -> None:
    spec = write_repo(tmp_path, S390X_SPEC)
    generate_into(bakegen, spec, spec.parent)
    config = spec.parent / ".github" / "actionlint.yaml"
    assert config.read_text().startswith("# Generated by bakegen from bakegen.yaml.")
    assert yaml.safe_load(config.read_text()) == {"self-hosted-runner": {"labels": ["ubuntu-24.04-arm", "ubuntu-24.04-s390x"]}}
    # Without it, actionlint rejects the s390x runner: the file is what makes the workflow lint.
    config.unlink()
    (spec.parent / ".git").mkdir()  # actionlint looks for .github/actionlint.yaml at the repository root
    actionlint = subprocess.run(
        [str(BIN / "actionlint"), "-no-color", ".github/workflows/docker.yml"], cwd=spec.parent, capture_output=True, text=True
    )
    assert 'label "ubuntu-24.04-s390x" is unknown' in actionlint.stdout


def test_check_covers_both_files_and_a_foreign_actionlint_config_is_left_alone(tmp_path: Path, bakegen: Runner) -> None:
    spec = write_repo(tmp_path, S390X_SPEC)
    generate_into(bakegen, spec, spec.parent)
    config = spec.parent / ".github" / "actionlint.yaml"
    assert bakegen("workflow", "-f", str(spec), "--check").returncode == 0
    config.write_text(config.read_text().replace("ubuntu-24.04-s390x", "ubuntu-22.04-s390x"))
    stale = bakegen("workflow", "-f", str(spec), "--check")
    assert stale.returncode == 1 and "+    - ubuntu-24.04-s390x" in stale.stdout
    config.write_text("self-hosted-runner:\n  labels: [mine]\n")  # the project's own configuration
    result = bakegen("workflow", "-f", str(spec))
    assert result.returncode == 0
    assert config.read_text() == "self-hosted-runner:\n  labels: [mine]\n"
    assert (
        "not written by bakegen, so left alone; its self-hosted-runner labels should include: ubuntu-24.04-arm, ubuntu-24.04-s390x"
        in result.stderr
    )


# -- structure --


def test_structure_matches_the_spec(bakegen: Runner) -> None:
    text = generate(bakegen, LLAMA_SPEC.parent)
    assert text.startswith("# Generated by bakegen from bakegen.yaml. Do not edit")
    workflow: dict[str, Any] = yaml.safe_load(text)
    assert set(workflow["jobs"]) == {"build", "merge"}
    assert workflow["jobs"]["merge"]["needs"] == ["build"]
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["jobs"]["build"]["permissions"] == {"contents": "read", "packages": "write"}
    assert workflow["env"] == {"BAKEGEN_SPEC": "bakegen.yaml"}
    assert set(triggers(workflow)) == {"workflow_dispatch", "schedule", "push", "pull_request"}
    entries = workflow["jobs"]["build"]["strategy"]["matrix"]["include"]
    assert [(e["variant"], e["platform"], e["runner"], e["python"]) for e in entries] == [
        ("cpu", "linux/amd64", "ubuntu-24.04", "setup-python"),
        ("cpu", "linux/arm64", "ubuntu-24.04-arm", "setup-python"),
        ("cpu", "linux/s390x", "ubuntu-24.04-s390x", "apt"),  # cpu's platform source, on IBM's runner
        ("cuda", "linux/amd64", "ubuntu-24.04", "setup-python"),
        ("cuda13", "linux/amd64", "ubuntu-24.04", "setup-python"),
        ("rocm", "linux/amd64", "ubuntu-24.04", "setup-python"),
        ("rocm", "linux/arm64", "ubuntu-24.04-arm", "setup-python"),
        ("musa", "linux/amd64", "ubuntu-24.04", "setup-python"),
        ("vulkan", "linux/amd64", "ubuntu-24.04", "setup-python"),
        ("intel", "linux/amd64", "ubuntu-24.04", "setup-python"),
        ("openvino", "linux/amd64", "ubuntu-24.04", "setup-python"),
    ]
    assert {e["variant"]: e["free-disk"] for e in entries} == {
        "cpu": False, "cuda": True, "cuda13": True, "rocm": True, "musa": True, "vulkan": False, "intel": True, "openvino": True
    }  # fmt: skip
    assert entries[1]["cache-from"] == "type=registry,ref=ghcr.io/ggml-org/llama.cpp:buildcache-cpu-arm64"
    bake = step(workflow, "build", "bake")["run"]
    assert '"$BAKEGEN_VARIANT" --platform "$BAKEGEN_PLATFORM" --push --strict --smoke' in bake
    assert '--metadata-file "$RUNNER_TEMP/digests/$BAKEGEN_VARIANT-$BAKEGEN_ARCH.json"' in bake
    merge = step(workflow, "merge", "merge")["run"]
    assert merge == 'bakegen merge -f "$BAKEGEN_SPEC" --from "$RUNNER_TEMP/digests" --metadata-file "$RUNNER_TEMP/merged.json"'
    assert "VERSION" not in text and "ref_name" not in text  # bake and merge compute the version from git
    checkouts = [s for job in ("build", "merge") for s in steps_of(workflow, job) if s.get("name") == "Check out"]
    assert [s["with"] for s in checkouts] == [{"fetch-depth": 0, "persist-credentials": False}] * 2
    upload = next(s for s in steps_of(workflow, "build") if "upload-artifact" in s.get("uses", ""))
    assert upload["with"]["name"] == "digests-${{ matrix.variant }}-${{ matrix.arch }}"
    download = next(s for s in steps_of(workflow, "merge") if "download-artifact" in s.get("uses", ""))
    assert download["with"] == {"path": "${{ runner.temp }}/digests", "pattern": "digests-*", "merge-multiple": True}
    summaries = [s for job in ("build", "merge") for s in steps_of(workflow, job) if s["name"] == "Summary"]
    assert [s["if"] for s in summaries] == ["always()", "always()"]


def test_every_action_is_pinned_to_a_commit_of_a_known_release(bakegen: Runner, tmp_path: Path) -> None:
    texts = [generate(bakegen, LLAMA_SPEC.parent), generate(bakegen, write_repo(tmp_path, S390X_SPEC).parent)]
    used = {m.group(1) for text in texts for m in re.finditer(r"uses: ([\w./-]+)@", text)}
    assert used == set(PINNED_ACTIONS)  # every pinned action is used somewhere, every used one is pinned
    for text in texts:
        for action, sha, release in re.findall(r"uses: ([\w./-]+)@(\S+) # (\S+)", text):
            assert (sha, release) == PINNED_ACTIONS[action] and re.fullmatch(r"[0-9a-f]{40}", sha)
        assert text.count("uses: ") == len(re.findall(r"uses: [\w./-]+@[0-9a-f]{40} # v[\d.]+$", text, re.MULTILINE))


def test_pull_requests_and_forks_build_and_smoke_test_but_never_log_in_push_or_attest(bakegen: Runner) -> None:
    workflow: dict[str, Any] = yaml.safe_load(generate(bakegen, LLAMA_SPEC.parent))
    pull_request = GITHUB_SCHEDULE | {"event_name": "pull_request"}
    fork = GITHUB_SCHEDULE | {"repository": "someone/llama.cpp"}
    entry = workflow["jobs"]["build"]["strategy"]["matrix"]["include"][0]
    build = steps_of(workflow, "build")
    for github, publishes in (
        (GITHUB_SCHEDULE, True),
        (GITHUB_SCHEDULE | {"event_name": "push"}, True),
        (pull_request, False),
        (fork, False),
    ):
        ran = [s for s in build if runs(s, github, entry)]
        publishing = [
            s for s in ran if "login-action" in s.get("uses", "") or "upload-artifact" in s.get("uses", "") or "--push" in s.get("run", "")
        ]
        assert bool(publishing) is publishes and len(publishing) in (0, 3)
        assert [s.get("id") for s in ran if "bakegen bake" in s.get("run", "")] == ["bake" if publishes else "bake-only"]
        assert runs(workflow["jobs"]["merge"], github) is publishes  # merge and the attestations: the whole job
    only = step(workflow, "build", "bake-only")
    assert only["if"] == "github.event_name == 'pull_request' || github.repository != 'ggml-org/llama.cpp'"
    assert "--load --strict --smoke" in only["run"] and '--set "*.cache-to="' in only["run"]  # no login: no cache export
    assert step(workflow, "build", "bake")["if"] == workflow["jobs"]["merge"]["if"] == LLAMA_PUBLISH


def test_concurrency_cancels_only_superseded_pull_request_runs(bakegen: Runner) -> None:
    workflow: dict[str, Any] = yaml.safe_load(generate(bakegen, LLAMA_SPEC.parent))
    assert workflow["concurrency"] == {
        "group": "${{ github.workflow }}-${{ github.event_name }}-${{ github.ref }}",
        "cancel-in-progress": "${{ github.event_name == 'pull_request' }}",
    }


def test_without_a_known_github_repository_only_pull_requests_are_kept_from_publishing(bakegen: Runner) -> None:
    result = bakegen("workflow", "-o", "-", cwd=DEMO_DIR)
    assert result.returncode == 0
    assert "workflow.repository is not set and the image repository is not on ghcr.io" in result.stderr
    workflow: dict[str, Any] = yaml.safe_load(result.stdout)
    assert workflow["jobs"]["merge"]["if"] == "github.event_name != 'pull_request'"
    assert workflow["jobs"]["build"]["permissions"] == {"contents": "read"}  # not ghcr.io: GITHUB_TOKEN pushes nothing
    assert workflow["jobs"]["merge"]["permissions"] == {"contents": "read", "id-token": "write", "attestations": "write"}


def test_repository_setting_names_who_may_publish(tmp_path: Path, bakegen: Runner) -> None:
    spec = write_repo(tmp_path, (DEMO_DIR / "bakegen.yaml").read_text() + "workflow:\n  repository: example/demo\n")
    result = bakegen("workflow", "-f", str(spec), "-o", "-")
    assert result.returncode == 0 and "workflow.repository" not in result.stderr
    assert (
        yaml.safe_load(result.stdout)["jobs"]["merge"]["if"] == "github.event_name != 'pull_request' && github.repository == 'example/demo'"
    )


def test_attestations_per_target_with_their_permissions_only_on_the_merge_job(tmp_path: Path, bakegen: Runner) -> None:
    workflow: dict[str, Any] = yaml.safe_load(generate(bakegen, LLAMA_SPEC.parent))
    merge = workflow["jobs"]["merge"]
    assert merge["permissions"] == {"contents": "read", "packages": "write", "id-token": "write", "attestations": "write"}
    assert not {"id-token", "attestations"} & set(workflow["jobs"]["build"]["permissions"])
    attests = [s for s in merge["steps"] if "attest-build-provenance" in s.get("uses", "")]
    assert [s["name"] for s in attests] == [f"Attest {t}" for t in LLAMA_TARGETS]
    assert attests[5]["with"] == {
        "subject-name": "${{ steps.digests.outputs.name-server-cuda }}",
        "subject-digest": "${{ steps.digests.outputs.digest-server-cuda }}",
        "push-to-registry": True,
    }
    assert step(workflow, "merge", "digests")["env"]["BAKEGEN_TARGETS"] == " ".join(LLAMA_TARGETS)
    spec = write_repo(tmp_path, LLAMA_SPEC.read_text() + "workflow:\n  attest: false\n")
    off: dict[str, Any] = yaml.safe_load(bakegen("workflow", "-f", str(spec), "-o", "-").stdout)
    assert off["jobs"]["merge"]["permissions"] == {"contents": "read", "packages": "write"}
    assert "attest" not in json.dumps(off["jobs"]["merge"]["steps"])


def test_gha_cache_gets_its_runtime_token_before_the_build(tmp_path: Path, bakegen: Runner) -> None:
    spec = write_repo(tmp_path, S390X_SPEC)
    workflow: dict[str, Any] = yaml.safe_load(bakegen("workflow", "-f", str(spec), "-o", "-").stdout)
    names = [s.get("uses", "").split("@")[0] or s.get("id") for s in steps_of(workflow, "build")]
    assert names.index("crazy-max/ghaction-github-runtime") < names.index("bake") < names.index("bake-only")
    assert '--set "*.cache-to=$BAKEGEN_CACHE_TO"' in step(workflow, "build", "bake-only")["run"]  # gha: PRs may write their cache
    assert "ghaction-github-runtime" not in generate(bakegen, LLAMA_SPEC.parent)  # registry cache: not needed


def test_python_per_runner_label(tmp_path: Path, bakegen: Runner) -> None:
    spec = write_repo(tmp_path, S390X_SPEC)
    workflow: dict[str, Any] = yaml.safe_load(bakegen("workflow", "-f", str(spec), "-o", "-").stdout)
    entries = workflow["jobs"]["build"]["strategy"]["matrix"]["include"]
    assert {(e["runner"], e["python"]) for e in entries} == {
        ("ubuntu-24.04", "setup-python"),
        ("ubuntu-24.04-arm", "setup-python"),
        ("ubuntu-24.04-s390x", "apt"),
    }
    build = steps_of(workflow, "build")
    setup = next(s for s in build if s["name"] == "Set up Python")
    apt = next(s for s in build if s["name"] == "Install Python from the distribution")
    assert setup["if"] == "matrix.python == 'setup-python'" and apt["if"] == "matrix.python == 'apt'"
    assert apt["run"] == "sudo apt-get update\nsudo apt-get install -y python3-venv python3-pip"
    assert [s["name"] for s in steps_of(workflow, "merge")][1:4] == [
        "Set up Python",
        "Create a virtual environment for bakegen",
        "Install bakegen",
    ]
    assert "if" not in steps_of(workflow, "merge")[1]  # one runner, one way: no condition


def test_install_source(tmp_path: Path, bakegen: Runner) -> None:
    def install_of(workflow: dict[str, Any]) -> list[str]:
        return [s["run"] for job in workflow["jobs"].values() for s in job["steps"] if s.get("name") == "Install bakegen"]

    spec = write_repo(tmp_path, LLAMA_SPEC.read_text(), "examples/llama.cpp")
    repo = tmp_path / "repo"
    default = install_of(generate_into(bakegen, spec, repo))
    assert default == [default[0]] * 2 and default[0].endswith(f'\npip install "bakegen=={__version__}"')
    assert "set workflow.install in the spec" in default[0]
    (repo / "pyproject.toml").write_text('[build-system]\nrequires = ["hatchling"]\n\n[project]\nname = "bakegen"\n')
    assert install_of(generate_into(bakegen, spec, repo))[0].endswith('\npip install ".[docker]"')  # bakegen's own repository
    (repo / "pyproject.toml").write_text('[project]\nname = "bakegen-plugin"\n[tool.x]\nname = "bakegen"\n')
    assert install_of(generate_into(bakegen, spec, repo)) == default
    spec.write_text(LLAMA_SPEC.read_text() + "\nworkflow:\n  install: pip install bakegen-fork==1.2\n  schedule: null\n")
    workflow = generate_into(bakegen, spec, repo)
    assert install_of(workflow) == ["pip install bakegen-fork==1.2"] * 2
    assert "schedule" not in triggers(workflow)


def test_deterministic_and_committed_copy_is_current(bakegen: Runner) -> None:
    assert generate(bakegen, LLAMA_SPEC.parent) == generate(bakegen, LLAMA_SPEC.parent)
    check = bakegen("workflow", "-f", str(LLAMA_SPEC), "--check")
    assert check.returncode == 0, check.stdout
    assert check.stdout.count("is up to date") == 2  # the workflow and .github/actionlint.yaml


def test_check_reports_a_stale_workflow(tmp_path: Path, bakegen: Runner) -> None:
    shutil.copy(LLAMA_SPEC, tmp_path / "bakegen.yaml")
    assert bakegen("workflow", cwd=tmp_path).returncode == 0
    written = tmp_path / ".github" / "workflows" / "docker.yml"
    written.write_text(written.read_text().replace("ubuntu-24.04-arm", "ubuntu-22.04-arm"))
    stale = bakegen("workflow", "--check", cwd=tmp_path)
    assert stale.returncode == 1
    assert re.search(r"^-\s+runner: ubuntu-22.04-arm$", stale.stdout, re.MULTILINE)
    assert re.search(r"^\+\s+runner: ubuntu-24.04-arm$", stale.stdout, re.MULTILINE)


def test_matrix_json(bakegen: Runner) -> None:
    plain = json.loads(bakegen("matrix", "-f", str(LLAMA_SPEC)).stdout)
    assert plain["include"][0] == {"variant": "cpu", "platforms": "linux/amd64,linux/arm64,linux/s390x", "free-disk": False}
    split = json.loads(bakegen("matrix", "-f", str(LLAMA_SPEC), "--platform-split").stdout)
    assert len(split["include"]) == 11 and split["include"][1]["arch"] == "arm64" and split["include"][2]["arch"] == "s390x"


# -- the steps, run --


def test_generated_steps_run_with_a_stub_bakegen(tmp_path: Path, bakegen: Runner, stubs: Path) -> None:
    """A scheduled run in ggml-org/llama.cpp: what every build job and the merge job hand to bakegen,
    the digests they pass on, the step outputs the attestations read, the job summaries."""
    spec = write_repo(tmp_path, LLAMA_SPEC.read_text())
    repo = spec.parent
    workflow = generate_into(bakegen, spec, repo)
    log = tmp_path / "argv.log"
    environ = stub_environ(stubs, log, LLAMA_TARGETS, "ghcr.io/ggml-org/llama.cpp")
    merge = run_publish(workflow, repo, tmp_path, environ, GITHUB_SCHEDULE)
    argv = logged_argv(log)
    # every job first computes the version from git the way bake and merge do (the example has `versioning`)
    assert [a for a in argv if a[0] == "version"] == [["version", "-f", "bakegen.yaml", "--json"]] * 12
    argv = [a for a in argv if a[0] != "version"]
    temp = str(tmp_path / "build-1" / "runner-temp")
    assert argv[1] == [
        *("bake", "-f", "bakegen.yaml", "cpu", "--platform", "linux/arm64", "--push", "--strict", "--smoke"),
        *("--metadata-file", f"{temp}/digests/cpu-arm64.json"),
        *("--set", "*.cache-from=type=registry,ref=ghcr.io/ggml-org/llama.cpp:buildcache-cpu-arm64"),
        *("--set", "*.cache-to=type=registry,ref=ghcr.io/ggml-org/llama.cpp:buildcache-cpu-arm64,mode=max"),
    ]
    assert [a[3] + " " + a[5] for a in argv[:11]] == [
        f"{e['variant']} {e['platform']}" for e in workflow["jobs"]["build"]["strategy"]["matrix"]["include"]
    ]
    merge_temp = str(merge.temp)
    assert argv[11:] == [["merge", "-f", "bakegen.yaml", "--from", f"{merge_temp}/digests", "--metadata-file", f"{merge_temp}/merged.json"]]
    assert sorted(p.name for p in (merge.temp / "digests").iterdir()) == sorted(
        [f"{e['variant']}-{e['arch']}.json" for e in workflow["jobs"]["build"]["strategy"]["matrix"]["include"]]
    )
    outputs = dict(line.split("=", 1) for line in (merge.root / "output").read_text().splitlines())
    assert outputs["digest-server-cuda"] == f"sha256:{5:064x}" and outputs["name-server-cuda"] == "ghcr.io/ggml-org/llama.cpp"
    assert set(outputs) == {f"{kind}-{t}" for t in LLAMA_TARGETS for kind in ("digest", "name")}
    build_summary = (tmp_path / "build-0" / "summary").read_text()
    assert "### cpu linux/amd64" in build_summary
    assert f"| full-cpu | linux/amd64 | sha256:{'a' * 64} | 3.0 MiB | 2 passed |" in build_summary
    assert f"| light-cpu | linux/amd64 | sha256:{'b' * 64} | - | - |" in build_summary
    merge_summary = (merge.root / "summary").read_text()
    assert f"| server-cuda | ghcr.io/ggml-org/llama.cpp | sha256:{5:064x} | `ghcr.io/ggml-org/llama.cpp:server-cuda` |" in merge_summary
    installs = [line for line in log.read_text().splitlines() if line.startswith("pip ")]
    assert installs == [f"pip install bakegen=={__version__}"] * 12  # eleven build jobs and the merge job


def test_digest_outputs_refuse_a_target_missing_from_merged_json(tmp_path: Path, bakegen: Runner, stubs: Path) -> None:
    spec = write_repo(tmp_path, LLAMA_SPEC.read_text())
    workflow = generate_into(bakegen, spec, spec.parent)
    environ = stub_environ(stubs, tmp_path / "argv.log", LLAMA_TARGETS[:-1], "ghcr.io/ggml-org/llama.cpp")
    machine = Machine(tmp_path / "merge", GITHUB_SCHEDULE, environ)
    with pytest.raises(AssertionError, match=r"server-openvino is missing from merged\.json, so it cannot be attested"):
        machine.run_job(workflow, "merge", {}, spec.parent, wanted=lambda s: s.get("id") in ("merge", "digests"))
    assert (machine.root / "output").read_text() == ""  # nothing half-written for the attestations


def test_build_summary_says_when_there_is_no_metadata(tmp_path: Path, bakegen: Runner, stubs: Path) -> None:
    workflow: dict[str, Any] = yaml.safe_load(generate(bakegen, LLAMA_SPEC.parent))
    machine = Machine(tmp_path / "build", GITHUB_SCHEDULE, stub_environ(stubs, tmp_path / "argv.log", [], "x"))
    entry = workflow["jobs"]["build"]["strategy"]["matrix"]["include"][3]
    assert machine.run_job(workflow, "build", entry, LLAMA_SPEC.parent, wanted=lambda s: s["name"] == "Summary") == ["Summary"]
    summary = (machine.root / "summary").read_text()
    assert summary.startswith("### cuda linux/amd64\n\nNo build metadata: the build stopped before writing it")


@pytest.fixture
def marker() -> Iterator[str]:
    """A path prefix no other run uses; every file starting with it is removed afterwards."""
    prefix = f"/tmp/pwned-{uuid.uuid4().hex[:12]}"
    yield prefix
    for path in Path("/tmp").glob(Path(prefix).name + "*"):
        path.unlink()


def test_no_spec_value_or_event_field_is_ever_run_as_shell(tmp_path: Path, bakegen: Runner, stubs: Path, marker: str) -> None:
    """Plants shell payloads in every spec field that reaches the workflow and in the event's fields,
    runs every `run:` step of every job (whatever its `if:`) as GitHub would, and looks for the marker.

    Fields: a variable default and the cache ref (both reach --set cache-from/cache-to), the spec's folder
    name (reaches -f), runner labels and the python setting's keys, the workflow name, tag patterns and
    pull request paths. Not a field: `workflow.install`, which is a command by design (the spec's author
    writes the code that runs). Variant and stage names and the image repository cannot hold these
    characters (the schema's patterns); workflow.repository neither."""
    payloads = [
        f"$(touch {marker}-a)",
        f"`touch {marker}-b`",
        f"'; touch {marker}-c; '",
        f'"; touch {marker}-d; "',
        f"${{IFS}}$(touch {marker}-e)",
    ]
    evil = " ".join(payloads)
    folder = "dir $(touch pwned-f) `touch pwned-g` '; touch pwned-h; '"  # a folder name holds no '/'
    spec_text = (
        "version: 1\n"
        "image: {repository: ghcr.io/owner/app}\n"
        f"variables:\n  EVIL: {{default: {json.dumps(evil)}}}\n"
        "stages: [full, light]\n"
        "variants:\n  cpu: {dockerfile: Dockerfile, platforms: [linux/amd64, linux/arm64]}\n"
        "workflow:\n"
        f"  name: {json.dumps('Publish ' + evil)}\n"
        f"  runners: {{linux/arm64: {json.dumps('arm ' + evil)}}}\n"
        f"  python: {{{json.dumps('arm ' + evil)}: apt}}\n"
        f"  tags: [{json.dumps('b' + evil)}]\n"
        f"  pull-request: {{paths: [{json.dumps(evil)}]}}\n"
    )
    evil_cache = (
        f"cache: {{type: registry, ref: {json.dumps('{repository}:cache-{EVIL}-' + evil.replace('{', '{{').replace('}', '}}'))}}}\n"
    )
    spec = write_repo(tmp_path, spec_text + evil_cache, folder)
    refused = bakegen("workflow", "-f", str(spec), "-o", "-")  # a cache ref is checked as an image reference first
    assert refused.returncode == 2 and "cache.ref: the cache ref of full-cpu is not an image reference" in refused.stderr
    spec = write_repo(tmp_path, spec_text, folder)
    repo = tmp_path / "repo"
    text = bakegen("workflow", "-f", str(spec), "-o", str(repo / ".github" / "workflows" / "docker.yml"))
    assert text.returncode == 0, text.stderr
    workflow: dict[str, Any] = yaml.safe_load((repo / ".github" / "workflows" / "docker.yml").read_text())
    runs_of = [s["run"] for job in workflow["jobs"].values() for s in job["steps"] if "run" in s]
    assert runs_of and not [r for r in runs_of if "${{" in r]
    github = GITHUB_SCHEDULE | {"repository": "owner/app", "event_name": "pull_request", "ref_name": evil, "head_ref": evil, "actor": evil}
    log = tmp_path / "argv.log"
    environ = stub_environ(stubs, log, ["full-cpu", "light-cpu"], "ghcr.io/owner/app")
    failures: list[str] = []
    for index, entry in enumerate(workflow["jobs"]["build"]["strategy"]["matrix"]["include"]):
        machine = Machine(tmp_path / f"build-{index}", github, environ)
        machine.run_job(workflow, "build", entry, repo, wanted=lambda s: True, failures=failures)
    merge = Machine(tmp_path / "merge", github, environ)
    merge.run_job(workflow, "merge", {}, repo, wanted=lambda s: True, failures=failures)
    assert list(Path("/tmp").glob(Path(marker).name + "*")) == []
    assert [p for p in tmp_path.rglob("pwned-*")] == []
    assert failures == []
    # The values arrived, whole and unchanged, as single arguments: -f with the folder, --set with the ref.
    argv = logged_argv(log)
    bakes = [a for a in argv if a[0] == "bake"]
    assert len(bakes) == 4  # two matrix entries, each with its publish and its pull request step
    assert {a[2] for a in argv} == {f"{folder}/bakegen.yaml"}


@pytest.mark.parametrize(
    ("addition", "where"),
    [
        ("workflow:\n  runners: {linux/amd64: '${{ github.token }}'}\n", "workflow.runners"),
        ("workflow:\n  name: 'Publish ${{ secrets.X }}'\n", "workflow.name"),
        ("workflow:\n  install: 'pip install ${{ github.head_ref }}'\n", "workflow.install"),
    ],
)
def test_spec_values_holding_an_expression_are_refused(tmp_path: Path, bakegen: Runner, addition: str, where: str) -> None:
    spec = write_repo(tmp_path, (DEMO_DIR / "bakegen.yaml").read_text() + addition)
    result = bakegen("workflow", "-f", str(spec), "-o", "-")
    assert result.returncode == 2 and result.stdout == ""
    assert f"{spec}: {where}: " in result.stderr and "contains '${{', which GitHub would evaluate as an expression" in result.stderr


def test_a_spec_path_holding_an_expression_is_refused(tmp_path: Path, bakegen: Runner) -> None:
    spec = write_repo(tmp_path, (DEMO_DIR / "bakegen.yaml").read_text(), "${{ github.token }}")
    result = bakegen("workflow", "-f", str(spec), "-o", str(tmp_path / "repo" / ".github" / "workflows" / "docker.yml"))
    assert result.returncode == 2 and "the spec's path: '${{ github.token }}/bakegen.yaml' contains '${{'" in result.stderr
    assert not (tmp_path / "repo" / ".github").exists()


@pytest.mark.docker
@pytest.mark.registry
@pytest.mark.slow
def test_generated_jobs_run_locally_and_publish_multi_platform_tags(
    tmp_path: Path, bakegen: Runner, demo_rootfs: Path, registry_repository: str
) -> None:
    """Run what each build job and the merge job would run on GitHub, here, against the demo: images
    pushed by digest only, then every final tag created from the digests, each a multi-platform list."""
    workflow: dict[str, Any] = yaml.safe_load(generate(bakegen, DEMO_DIR))
    repo = registry_repository
    environ = clean_env(REPO=repo, VERSION="b4567", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    github = GITHUB_SCHEDULE | {"repository": "example/demo", "event_name": "workflow_dispatch"}
    entries = workflow["jobs"]["build"]["strategy"]["matrix"]["include"]
    assert {e["platform"] for e in entries} == {"linux/amd64", "linux/arm64", "linux/s390x"}
    merge = Machine(tmp_path / "merge", github, environ)
    (merge.temp / "digests").mkdir()
    for index, entry in enumerate(entries):  # one runner each on GitHub; one after another here
        machine = Machine(tmp_path / f"build-{index}", github, environ)
        assert machine.run_job(workflow, "build", entry, DEMO_DIR, wanted=lambda s: s.get("id") == "bake")
        for path in (machine.temp / "digests").glob("*.json"):  # upload-artifact, download-artifact
            shutil.copy(path, merge.temp / "digests" / path.name)
        assert registry_tags(repo) == set()  # pushed by digest: no tag before the merge
    merge.run_job(workflow, "merge", {}, DEMO_DIR, wanted=lambda s: s.get("id") in ("merge", "digests"))
    expected = {f"{stage}{suffix}{version}" for stage in ("full", "light", "server") for suffix in ("", "-cuda", "-cuda12", "-rocm", "-musa")
                for version in ("", "-b4567")}  # fmt: skip
    assert registry_tags(repo) == expected
    # the s390x job built cpu's platform source: one list per tag, from two Dockerfiles
    assert imagetools_platforms(f"{repo}:server-b4567") == ["linux/amd64", "linux/arm64", "linux/s390x"]
    assert imagetools_platforms(f"{repo}:light-rocm") == ["linux/amd64", "linux/arm64"]
    assert imagetools_platforms(f"{repo}:full-cuda12") == ["linux/amd64"]
    merged = json.loads((merge.temp / "merged.json").read_text())
    assert {image["target"] for image in merged["images"]} == {
        f"{s}-{v}" for s in ("full", "light", "server") for v in ("cpu", "cuda", "rocm", "musa")
    }
    outputs = dict(line.split("=", 1) for line in (merge.root / "output").read_text().splitlines())
    assert outputs["name-server-cpu"] == repo and re.fullmatch(r"sha256:[0-9a-f]{64}", outputs["digest-server-cpu"])
    assert smoke_containers() == []


def test_project_ci_workflow_lints_and_checks_generated_files() -> None:
    ci = ROOT / ".github" / "workflows" / "ci.yml"
    actionlint = subprocess.run([str(BIN / "actionlint"), "-no-color", str(ci)], capture_output=True, text=True)
    assert actionlint.returncode == 0, actionlint.stdout
    text = ci.read_text()
    assert "bakegen render --check" in text and "bakegen workflow --check" in text and "make test" in text


def test_pull_request_trigger_settings(tmp_path: Path, bakegen: Runner) -> None:
    spec = write_repo(tmp_path, S390X_SPEC)
    workflow: dict[str, Any] = yaml.safe_load(bakegen("workflow", "-f", str(spec), "-o", "-").stdout)
    assert triggers(workflow)["pull_request"] == {"paths": [".devops/**", "bakegen.yaml"]}
    spec.write_text(LLAMA_SPEC.read_text() + "workflow:\n  pull-request: false\n")
    workflow = yaml.safe_load(bakegen("workflow", "-f", str(spec), "-o", "-").stdout)
    assert set(triggers(workflow)) == {"workflow_dispatch", "schedule", "push"}


INTERLEAVED_SPEC = """\
version: 1
image: {repository: localhost:5000/unused}
variables:
  VERSION: {default: ""}
stages: [app]
tags: ["{stage}{suffix}", "{stage}{suffix}-{VERSION}"]
cache: {type: none}
variants:
  cpu: {dockerfile: Dockerfile, suffix: "", platforms: [linux/amd64, linux/arm64]}
"""


@pytest.mark.docker
@pytest.mark.registry
def test_two_interleaved_runs_of_the_generated_jobs_do_not_mix(tmp_path: Path, bakegen: Runner, registry_repository: str) -> None:
    """Runs A and B of the generated workflow (two checkouts whose image differs: a file's content),
    their jobs interleaved in one registry repository: A amd64, B amd64, B arm64, A arm64, merge B, merge A.
    Each run's index holds exactly the digests its own build jobs recorded; the shared tag ends at the last
    merge, each run's own VERSION tag at its own index."""
    from tests.test_demo_publish import registry_manifest

    repo = registry_repository
    checkouts = {}
    for run in ("a", "b"):
        checkout = tmp_path / f"checkout-{run}"
        checkout.mkdir()
        (checkout / "bakegen.yaml").write_text(INTERLEAVED_SPEC)
        (checkout / "Dockerfile").write_text("FROM scratch AS app\nCOPY payload.txt /payload.txt\n")
        (checkout / "payload.txt").write_text(f"built by run {run} {uuid.uuid4().hex}\n")
        checkouts[run] = checkout
    workflow: dict[str, Any] = yaml.safe_load(generate(bakegen, checkouts["a"]))
    entries = {e["platform"]: e for e in workflow["jobs"]["build"]["strategy"]["matrix"]["include"]}
    assert set(entries) == {"linux/amd64", "linux/arm64"}
    github = GITHUB_SCHEDULE | {"repository": "example/tiny", "event_name": "workflow_dispatch"}

    def environ(run: str) -> dict[str, str]:
        return clean_env(REPO=repo, VERSION=f"{run}1", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")

    merges = {run: Machine(tmp_path / f"merge-{run}", github, environ(run)) for run in ("a", "b")}
    recorded: dict[str, set[str]] = {"a": set(), "b": set()}
    order = [("a", "linux/amd64"), ("b", "linux/amd64"), ("b", "linux/arm64"), ("a", "linux/arm64")]
    for run, platform in order:
        machine = Machine(tmp_path / f"build-{run}-{platform.split('/')[1]}", github, environ(run))
        assert machine.run_job(workflow, "build", entries[platform], checkouts[run], wanted=lambda s: s.get("id") == "bake")
        [digests] = (machine.temp / "digests").glob("*.json")
        (merges[run].temp / "digests").mkdir(exist_ok=True)
        shutil.copy(digests, merges[run].temp / "digests" / digests.name)
        recorded[run] |= {image["digest"] for image in json.loads(digests.read_text())["images"]}
    assert registry_tags(repo) == set()  # builds push by digest only
    assert len(recorded["a"]) == len(recorded["b"]) == 2 and not recorded["a"] & recorded["b"]
    published = {}
    for run in ("b", "a"):
        merge = merges[run]
        merge.run_job(workflow, "merge", {}, checkouts[run], wanted=lambda s: s.get("id") in ("merge", "digests"))
        [image] = json.loads((merge.temp / "merged.json").read_text())["images"]
        published[run] = image["digest"]
        assert image["tags"] == [f"{repo}:app", f"{repo}:app-{run}1"]
    for run in ("a", "b"):
        index = registry_manifest(repo, published[run])
        assert {m["digest"] for m in index["manifests"]} == recorded[run], f"run {run}'s index mixes in the other run's images"
        assert registry_manifest(repo, f"app-{run}1") == index
    assert registry_manifest(repo, "app") == registry_manifest(repo, published["a"])  # the last merge wins the shared tag
    assert registry_tags(repo) == {"app", "app-a1", "app-b1"}


@pytest.mark.docker
@pytest.mark.registry
def test_build_metadata_and_job_summary_give_digest_platforms_size_and_smoke(
    tmp_path: Path, bakegen: Runner, registry_repository: str
) -> None:
    """One build job (bake, then the Summary step) and the merge, for real: the metadata file carries per
    target what the summary shows (buildx's digest, bakegen.platforms/size/smoke), the merge each tag's index digest."""
    import hashlib

    repo = registry_repository
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "bakegen.yaml").write_text(
        INTERLEAVED_SPEC.replace("[linux/amd64, linux/arm64]", "[linux/amd64]")
        + "checks:\n  app:\n    - {name: payload, file: /payload.txt}\n",
        encoding="utf-8",
    )
    (checkout / "Dockerfile").write_text("FROM scratch AS app\nCOPY payload.txt /payload.txt\n")
    (checkout / "payload.txt").write_text("x" * 3000)
    workflow: dict[str, Any] = yaml.safe_load(generate(bakegen, checkout))
    entry = next(e for e in workflow["jobs"]["build"]["strategy"]["matrix"]["include"] if e["platform"] == "linux/amd64")
    github = GITHUB_SCHEDULE | {"repository": "example/tiny", "event_name": "workflow_dispatch"}
    environ = clean_env(REPO=repo, VERSION="b1", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    build = Machine(tmp_path / "build", github, environ)
    build.run_job(workflow, "build", entry, checkout, wanted=lambda s: s.get("id") == "bake" or s["name"] == "Summary")
    metadata = json.loads((build.temp / "digests" / "cpu-amd64.json").read_text())
    [image] = metadata["images"]
    target = metadata["app-cpu"]
    assert target["containerimage.digest"] == image["digest"] and re.fullmatch(r"sha256:[0-9a-f]{64}", image["digest"])
    assert target["bakegen.platforms"] == "linux/amd64" and int(target["bakegen.size"]) >= 3000
    assert target["bakegen.smoke"] == "1 passed, 0 failed, 0 skipped"
    summary = (build.root / "summary").read_text()
    assert f"| app-cpu | linux/amd64 | {image['digest']} | 0.0 MiB | 1 passed, 0 failed, 0 skipped |" in summary
    rows = [line for line in summary.splitlines() if line.startswith("| ") and not line.startswith(("| target", "| ---"))]
    assert len(rows) == 1  # one row per target: the file's own keys (schema, images, merged) are not targets
    merge = Machine(tmp_path / "merge", github, environ)
    (merge.temp / "digests").mkdir()
    shutil.copy(build.temp / "digests" / "cpu-amd64.json", merge.temp / "digests")
    merge.run_job(workflow, "merge", {}, checkout, wanted=lambda s: s.get("id") in ("merge", "digests") or s["name"] == "Summary")
    [merged] = json.loads((merge.temp / "merged.json").read_text())["images"]
    raw = subprocess.run(["docker", "buildx", "imagetools", "inspect", "--raw", f"{repo}:app-b1"], capture_output=True, check=True).stdout
    assert merged["digest"] == "sha256:" + hashlib.sha256(raw).hexdigest() and merged["tags"] == [f"{repo}:app", f"{repo}:app-b1"]
    assert f"| app-cpu | {repo} | {merged['digest']} | `{repo}:app` `{repo}:app-b1` |" in (merge.root / "summary").read_text()
