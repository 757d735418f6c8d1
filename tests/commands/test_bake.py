"""`bakegen bake` and `bakegen merge` against the real engine, BuildKit and registry."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bakegen.commands.bake import BakeOptions, bake_steps, plan_slices
from bakegen.errors import BakegenError
from bakegen.planner import build_plan
from bakegen.runners.buildx import imagetools_platforms
from bakegen.spec import load_spec
from bakegen.steps import BuildStep, MergeStep, PushStep, SmokeStep
from tests.conftest import (
    DEMO_DIR,
    MINIMAL_SPEC,
    Runner,
    clean_env,
    docker_run,
    registry_tags,
    remove_images,
    unique_repository,
    write_spec,
)

DEMO_SPEC = DEMO_DIR / "bakegen.yaml"


def bake_args(**overrides: object) -> BakeOptions:
    return BakeOptions(**overrides)  # type: ignore[arg-type]


def test_docker_driver_push_of_multi_platform_targets_is_split() -> None:
    plan, _ = build_plan(load_spec(DEMO_SPEC))
    assert [s.label for s in plan_slices(plan, bake_args(push=True), lambda: "docker", lambda: "linux/amd64")] == [
        "linux/amd64",
        "linux/arm64",
        "linux/s390x",
    ]
    slices = plan_slices(plan, bake_args(push=True), lambda: "docker-container", lambda: "linux/amd64")
    assert [s.label for s in slices] == ["all"]
    split = plan_slices(plan, bake_args(push=True, split_platforms=True), lambda: "docker", lambda: "linux/amd64")
    assert [s.label for s in split] == ["linux/amd64", "linux/arm64", "linux/s390x"]
    assert [t.name for t in split[2].plan.targets] == ["full-cpu-s390x", "light-cpu-s390x", "server-cpu-s390x"]
    assert [t.name for t in split[1].plan.targets] == ["full-cpu", "light-cpu", "server-cpu", "full-rocm", "light-rocm", "server-rocm"]
    with pytest.raises(BakegenError, match="none of the selected targets builds for it"):
        plan_slices(plan, bake_args(platform="linux/ppc64le"), lambda: "docker", lambda: "linux/amd64")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"load": True}, ["build"]),
        ({"load": True, "smoke": True}, ["build", "smoke"]),
        # the demo: amd64, arm64, and s390x (cpu's platform source)
        ({"push": True, "smoke": True, "split_platforms": True}, ["build", "build", "build", "smoke", "push", "push", "push", "merge"]),
        ({"push": True, "split_platforms": True}, ["build", "build", "build", "push", "push", "push", "merge"]),
        ({"push": True, "smoke": True, "platform": "linux/arm64"}, ["build", "smoke", "push"]),
    ],
)
def test_bake_is_a_list_of_steps(options: dict[str, object], expected: list[str]) -> None:
    plan, _ = build_plan(load_spec(DEMO_SPEC))
    values = plan.values({}, environ={})
    opts = bake_args(**options)
    slices = plan_slices(plan, opts, lambda: "docker", lambda: "linux/amd64")
    steps = bake_steps(plan, slices, values, opts, DEMO_DIR)
    kinds = {BuildStep: "build", SmokeStep: "smoke", PushStep: "push", MergeStep: "merge"}
    assert [kinds[type(step)] for step in steps] == expected
    # the docker driver never pushes from buildx: it loads, and the image that was checked is uploaded by digest
    assert all(s.settings.load and not s.settings.push for s in steps if isinstance(s, BuildStep))


def test_smoke_of_targets_without_checks_says_so_and_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan, _ = build_plan(load_spec(write_spec(tmp_path, MINIMAL_SPEC)))
    opts = bake_args(push=True, smoke=True, split_platforms=True)
    slices = plan_slices(plan, opts, lambda: "docker", lambda: "linux/amd64")
    steps = bake_steps(plan, slices, plan.values({}, environ={}), opts, tmp_path)
    assert [type(s) for s in steps] == [BuildStep, BuildStep, PushStep, PushStep, MergeStep]  # built once, not twice
    assert "declare no checks" in capsys.readouterr().err


@pytest.mark.docker
def test_dry_run_prints_the_command_and_builds_nothing(bakegen: Runner, demo_rootfs: Path) -> None:
    repo = unique_repository("dry")
    result = bakegen("bake", "--dry-run", "--var", f"REPO={repo}", "light-cuda", "--cuda-version", "12.9.9", cwd=DEMO_DIR)
    assert result.returncode == 0, result.stderr
    assert "CUDA_VERSION=12.9.9" in result.stderr and "docker buildx bake --progress plain --file" in result.stderr
    assert "==> build linux/amd64: " in result.stderr or "==> build all: " in result.stderr
    assert 'target "light-cuda"' in result.stdout
    assert subprocess.run(["docker", "images", "-q", repo], capture_output=True, text=True).stdout == ""


@pytest.mark.docker
def test_every_demo_target_builds(tmp_path: Path, bakegen: Runner, demo_rootfs: Path) -> None:
    repo = unique_repository("all")
    try:
        result = bakegen("bake", "--load", "--progress", "quiet", "--var", f"REPO={repo}", cwd=DEMO_DIR)
        assert result.returncode == 0, result.stderr
        rows = [line.split() for line in result.stdout.splitlines()[1:]]
        assert len(rows) == 12
        assert all(row[-4].startswith("id:") for row in rows)  # a local image ID, and it says so
        assert {row[-5] for row in rows} == {"linux/amd64"}  # what was built, not what the spec lists
        for stage, suffix in [("light", ""), ("full", "-cuda"), ("server", "-rocm"), ("light", "-musa"), ("light", "-cuda12")]:
            inspect = subprocess.run(["docker", "image", "inspect", f"{repo}:{stage}{suffix}"], capture_output=True, text=True)
            assert inspect.returncode == 0, f"{stage}{suffix} missing"
        assert "ACCELERATOR=musa" in docker_run(f"{repo}:light-musa").stdout
    finally:
        remove_images(repo)


@pytest.mark.docker
@pytest.mark.parametrize(
    ("how", "extra_args", "extra_env"),
    [
        ("--var", ["--var", "CUDA_VERSION=12.8.1"], {}),
        ("environment", [], {"CUDA_VERSION": "12.8.1"}),
        ("--cuda-version", ["--cuda-version", "12.8.1", "--cuda-arch", "86;89"], {}),
    ],
)
def test_cuda_version_override_reaches_the_image(
    bakegen: Runner, demo_rootfs: Path, how: str, extra_args: list[str], extra_env: dict[str, str]
) -> None:
    repo = unique_repository("cuda")
    try:
        result = bakegen("bake", "--load", "--var", f"REPO={repo}", *extra_args, "light-cuda", cwd=DEMO_DIR, env=clean_env(**extra_env))
        if how == "--cuda-version":
            assert "CUDA_VERSION=12.8.1" in result.stderr and "CUDA_DOCKER_ARCH='86;89'" in result.stderr
        assert result.returncode == 0, result.stderr
        info = docker_run(f"{repo}:light-cuda").stdout
        assert "CUDA_VERSION=12.8.1" in info, how
        if how == "--cuda-version":
            assert "CUDA_DOCKER_ARCH=86;89" in info
        labels = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", f"{repo}:light-cuda"], capture_output=True, text=True
        )
        assert json.loads(labels.stdout)["org.bakegen.demo.cuda-version"] == "12.8.1"
    finally:
        remove_images(repo)


@pytest.mark.parametrize("command", ["plan", "bake", "smoke", "merge"])
def test_shorthand_flag_needs_its_variable(tmp_path: Path, bakegen: Runner, command: str) -> None:
    # MINIMAL_SPEC has CUDA_VERSION but no MUSA_VERSION: the check runs before anything touches docker.
    spec = write_spec(tmp_path, MINIMAL_SPEC)
    (tmp_path / "Dockerfile").write_text("FROM scratch AS full\nARG CUDA_VERSION\nFROM scratch AS server\nARG CUDA_VERSION\n")
    extra = ["--from", str(tmp_path / "digests.json")] if command == "merge" else []
    refused = bakegen(command, "-f", str(spec), "--musa-version", "rc9", *extra, "full-cpu")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "bakegen: --musa-version: none of the selected targets has the ARG MUSA_VERSION; nothing would use the value"
    ]
    planned = bakegen("plan", "-f", str(spec), "--cuda-version", "12.9.9", "full-cuda")
    assert planned.returncode == 0 and "CUDA_VERSION=12.9.9" in planned.stdout


def test_shorthand_flags_are_parsed_into_arg_values() -> None:
    from bakegen.main import build_parser

    args = build_parser().parse_args(["bake", "--var", "A=1", "--cuda-version", "12.8.1", "--cuda-arch", "86", "--musa-version", "rc4"])
    assert args.var == [("A", "1")]
    assert args.arg_values == [("CUDA_VERSION", "12.8.1"), ("CUDA_DOCKER_ARCH", "86"), ("MUSA_VERSION", "rc4")]


@pytest.mark.docker
@pytest.mark.registry
@pytest.mark.slow
def test_push_split_platforms_puts_every_tag_in_the_registry(
    tmp_path: Path, bakegen: Runner, demo_rootfs: Path, registry_repository: str
) -> None:
    repo = registry_repository
    metadata = tmp_path / "metadata.json"
    result = bakegen(
        "bake", "--push", "--split-platforms", "--smoke", "--progress", "quiet", "--var", f"REPO={repo}", "--var", "VERSION=b4567",
        "--metadata-file", str(metadata), cwd=DEMO_DIR,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    final = {f"{stage}{suffix}{version}" for stage in ("full", "light", "server") for suffix in ("", "-cuda", "-cuda12", "-rocm", "-musa")
             for version in ("", "-b4567")}  # fmt: skip
    assert registry_tags(repo) == final  # no per-platform handoff tag, ever
    # :server holds s390x too, built from the demo's s390x.Dockerfile (a platform source of cpu)
    assert imagetools_platforms(f"{repo}:server-b4567") == ["linux/amd64", "linux/arm64", "linux/s390x"]
    assert imagetools_platforms(f"{repo}:light-cuda12") == ["linux/amd64"]
    recorded = json.loads(metadata.read_text())
    assert len(recorded["images"]) == 21 and len(recorded["merged"]) == 12
    s390x = next(i for i in recorded["images"] if i["platform"] == "linux/s390x" and i["target"] == "full-cpu-s390x")
    s390x_config = json.loads(
        subprocess.run(
            ["docker", "buildx", "imagetools", "inspect", "--format", "{{json .Image}}", f"{repo}@{s390x['digest']}"],
            capture_output=True, check=True,
        ).stdout
    )  # fmt: skip
    assert s390x_config["architecture"] == "s390x"
    server = next(m for m in recorded["merged"] if m["target"] == "server-cpu")
    raw = subprocess.run(["docker", "buildx", "imagetools", "inspect", "--raw", f"{repo}:server"], capture_output=True, check=True).stdout
    assert server["digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    # the pushed image is the image that was checked: its config is the loaded image's
    light_amd = next(i for i in recorded["images"] if i["target"] == "light-cpu" and i["platform"] == "linux/amd64")
    manifest = json.loads(
        subprocess.run(
            ["docker", "buildx", "imagetools", "inspect", "--raw", f"{repo}@{light_amd['digest']}"], capture_output=True, check=True
        ).stdout
    )
    smoked = [line for line in result.stderr.splitlines() if line.startswith("PASS  light-cpu@linux/amd64")]
    assert smoked and all(manifest["config"]["digest"][:19] in line for line in smoked)


@pytest.mark.docker
@pytest.mark.registry
def test_per_platform_pushes_then_merge_and_never_clobber(
    tmp_path: Path, bakegen: Runner, demo_rootfs: Path, registry_repository: str
) -> None:
    repo = registry_repository
    digests = tmp_path / "digests"
    digests.mkdir()
    for platform in ("linux/amd64", "linux/arm64", "linux/s390x"):  # one CI runner each; s390x from s390x.Dockerfile
        arch = platform.split("/")[1]
        pushed = bakegen(
            "bake", "--push", "--platform", platform, "--var", f"REPO={repo}", "--metadata-file", str(digests / f"{arch}.json"), "light-cpu",
            cwd=DEMO_DIR,
        )  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr
    assert registry_tags(repo) == set()  # pushed by digest only
    merged = bakegen("merge", "--from", str(digests), "--var", f"REPO={repo}", "light-cpu", cwd=DEMO_DIR)
    assert merged.returncode == 0, merged.stderr
    assert imagetools_platforms(f"{repo}:light") == ["linux/amd64", "linux/arm64", "linux/s390x"]
    assert registry_tags(repo) == {"light"}
    # publishing amd64 alone would drop arm64 and s390x from :light: refused, and :light is untouched
    alone = bakegen("merge", "--from", str(digests / "amd64.json"), "--var", f"REPO={repo}", "light-cpu", cwd=DEMO_DIR)
    assert alone.returncode == 1 and "no image for linux/arm64, linux/s390x" in alone.stderr
    assert imagetools_platforms(f"{repo}:light") == ["linux/amd64", "linux/arm64", "linux/s390x"]
    forced = bakegen(
        "merge", "--from", str(digests / "amd64.json"), "--allow-fewer-platforms", "--var", f"REPO={repo}", "light-cpu", cwd=DEMO_DIR
    )
    assert forced.returncode == 0, forced.stderr
    assert imagetools_platforms(f"{repo}:light") == ["linux/amd64"]


@pytest.mark.docker
def test_failing_run_names_the_target(tmp_path: Path, bakegen: Runner, demo_rootfs: Path) -> None:
    shutil.copytree(demo_rootfs, tmp_path / "rootfs")
    (tmp_path / "Dockerfile").write_text(
        "FROM scratch AS base\nARG TARGETARCH\nADD rootfs/${TARGETARCH}.tar /\n"
        "FROM base AS good\nRUN echo fine\n"
        "FROM base AS broken\nRUN echo about to fail && exit 3\n"
    )
    (tmp_path / "bakegen.yaml").write_text(
        f"version: 1\nimage: {{repository: {unique_repository('fail')}}}\nstages: [good, broken]\n"
        "variants: {cpu: {dockerfile: Dockerfile, suffix: ''}}\n"
    )
    repo = unique_repository("fail")
    try:
        result = bakegen("bake", "--load", "--var", f"REPO={repo}", cwd=tmp_path)
    finally:
        remove_images(repo)  # the good stage did build
    assert result.returncode == 1
    assert "bakegen: build failed (all): broken-cpu" in result.stderr
    assert "--- last lines of broken-cpu ---" in result.stderr
    assert "exit code: 3" in result.stderr.splitlines()[-2]
    closing = result.stderr.splitlines()[-1]  # good-cpu did not fail, but its bake did
    assert closing.startswith("0 built, 1 failed, 1 not built in ") and closing.endswith(" s")
    assert "Traceback" not in result.stderr


@pytest.mark.docker
def test_registry_cache_spec_builds_on_the_docker_driver(tmp_path: Path, bakegen: Runner, demo_rootfs: Path) -> None:
    # The llama.cpp example exports a registry cache; the docker driver cannot, so bake drops cache-to.
    repo = unique_repository("cache")
    spec = (
        (DEMO_DIR / "bakegen.yaml")
        .read_text()
        .replace("  type: none   # the docker driver cannot export a build cache", "  type: registry")
    )
    assert "type: registry" in spec
    (tmp_path / "cache.yaml").write_text(f"context: {DEMO_DIR}\n" + spec)
    try:
        result = bakegen("bake", "-f", "cache.yaml", "--load", "--var", f"REPO={repo}", "light-cpu", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "the docker driver cannot export a build cache; building without cache-to" in result.stderr
        assert docker_run(f"{repo}:light").stdout.startswith("ACCELERATOR=cpu")
    finally:
        remove_images(repo)


# -- supply chain: --provenance / --sbom, and the annotations the docker driver would drop --

TINY_SPEC = """\
version: 1
image: {{repository: {repository}}}
stages: [app]
annotations:
  org.opencontainers.image.title: tiny
  "index:org.example.index": on-the-index
  "manifest-descriptor:org.example.descriptor": nowhere
variants:
  cpu: {{dockerfile: Dockerfile, suffix: "", platforms: [linux/amd64, linux/arm64]}}
"""


def tiny_project(directory: Path, repository: str, content: str = "hello") -> Path:
    """A FROM scratch image with one file: builds in a second for any platform, no QEMU needed."""
    (directory / "Dockerfile").write_text("FROM scratch AS app\nCOPY payload.txt /payload.txt\n")
    (directory / "payload.txt").write_text(content)
    return write_spec(directory, TINY_SPEC.format(repository=repository))


def test_provenance_and_sbom_become_attest_overrides(tmp_path: Path) -> None:
    from bakegen.commands.bake import attestations
    from bakegen.steps import RunRecord

    assert attestations(bake_args(provenance="mode=max", sbom="true")) == ("type=provenance,mode=max", "type=sbom,disabled=false")
    assert attestations(bake_args(provenance="false")) == ("type=provenance,disabled=true",)
    plan, _ = build_plan(load_spec(tiny_project(tmp_path, "example.com/app")))
    opts = bake_args(push=True, provenance="mode=max", sbom="generator=example/sbom")
    slices = plan_slices(plan, opts, lambda: "docker-container", lambda: "linux/amd64")
    [build, merge] = bake_steps(plan, slices, plan.values({}, environ={}), opts, tmp_path, docker_driver=False)
    assert isinstance(build, BuildStep) and isinstance(merge, MergeStep)
    invocation = build.invocation(RunRecord(tmp_path))
    argv = invocation.argv()
    assert "*.attest=type=provenance,mode=max" in argv and "app-cpu.attest=type=sbom,generator=example/sbom" in argv
    # what buildx makes of them: both attestations on the target (one --set key each: run_bake passes a mapping)
    printed = subprocess.run([*argv[:-1], "--print", *invocation.targets], cwd=tmp_path, capture_output=True, text=True)
    if printed.returncode == 0:  # needs docker buildx; the argv above is checked either way
        assert sorted(json.loads(printed.stdout)["target"]["app-cpu"]["attest"]) == [
            "type=provenance,mode=max",
            "type=sbom,generator=example/sbom",
        ]
    assert merge.index_annotations("app-cpu") == {"org.example.index": "on-the-index"}  # what the merge puts on the index


@pytest.mark.docker
@pytest.mark.parametrize("flags", [["--provenance"], ["--sbom=generator=x/y"], ["--provenance=mode=max", "--sbom"]])
def test_attestations_are_refused_with_the_docker_driver_before_any_build(tmp_path: Path, bakegen: Runner, flags: list[str]) -> None:
    repo = unique_repository("attest")
    tiny_project(tmp_path, repo)
    try:
        result = bakegen("bake", "--load", *flags, cwd=tmp_path)
    finally:
        remove_images(repo)  # only if the refusal failed
    assert result.returncode == 2, result.stderr
    named = " and ".join(f.split("=")[0] for f in flags)
    assert result.stderr.splitlines() == [
        f"bakegen: {named}: the docker driver cannot attach attestations; use a docker-container builder "
        "(docker buildx create --use --driver docker-container, or --builder NAME)"
    ]
    assert (
        "==> build" not in result.stderr and subprocess.run(["docker", "images", "-q", repo], capture_output=True, text=True).stdout == ""
    )
    switched_off = bakegen("bake", "--load", "--dry-run", "--provenance=false", cwd=tmp_path)  # off is no attestation: allowed
    assert switched_off.returncode == 0 and "'*.attest=type=provenance,disabled=true'" in switched_off.stderr


@pytest.mark.docker
@pytest.mark.registry
def test_docker_driver_names_the_annotations_it_drops_and_the_merge_writes_the_index_ones(
    tmp_path: Path, bakegen: Runner, registry_repository: str
) -> None:
    from tests.test_demo_publish import registry_manifest

    repo = registry_repository
    tiny_project(tmp_path, repo)
    loaded = bakegen("bake", "--load", "--dry-run", cwd=tmp_path)
    warnings = [line for line in loaded.stderr.splitlines() if line.startswith("warning: the docker driver drops")]
    assert warnings == [
        "warning: the docker driver drops these annotations: index:org.example.index=on-the-index, "
        "manifest-descriptor:org.example.descriptor=nowhere, org.opencontainers.image.title=tiny "
        "(its image store keeps none; with --push bakegen writes the manifest and index ones)"
    ]
    pushed = bakegen("bake", "--push", "--progress", "quiet", cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    assert [line for line in pushed.stderr.splitlines() if line.startswith("warning: the docker driver drops")] == [
        "warning: the docker driver drops these annotations: manifest-descriptor:org.example.descriptor=nowhere "
        "(bakegen writes manifest and index annotations when it pushes, but has no place for descriptor ones)"
    ]
    index = registry_manifest(repo, "app")
    assert index["annotations"] == {"org.example.index": "on-the-index"}
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
    for entry in index["manifests"]:
        assert registry_manifest(repo, entry["digest"])["annotations"] == {"org.opencontainers.image.title": "tiny"}


def test_annotation_levels() -> None:
    from bakegen import annotation_levels

    written = ["a=1", "index:b=2", "index,manifest:c=3", "manifest-descriptor:d=4", "org.example:key=5"]
    assert annotation_levels.at_level(written, "manifest") == {"a": "1", "c": "3", "org.example:key": "5"}
    assert annotation_levels.at_level(written, "index") == {"b": "2", "c": "3"}
    assert annotation_levels.dropped_by_docker_driver(written, uploaded=True) == ["manifest-descriptor:d=4"]
    assert annotation_levels.dropped_by_docker_driver(written, uploaded=False) == written


def test_merge_from_a_missing_file_is_one_plain_line(bakegen: Runner, tmp_path: Path) -> None:
    result = bakegen("merge", "--from", str(tmp_path / "nope.json"), "cpu", cwd=DEMO_DIR)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"bakegen: {tmp_path / 'nope.json'}: cannot read it: No such file or directory"
