"""README.md's shell blocks, run as a reader runs them: the only way to keep them true.

Which blocks run: every fenced block tagged sh, bash or shell, in the README's order, each in its own
`bash -euo pipefail` started at the top of a fresh copy of the repository (its git-tracked and
untracked-but-not-ignored files, committed into a new git repository), with the copy's `.venv` active,
as the README states ("Every shell block in this README runs from the repository's top directory with
that venv active"). A `cd` inside a block lasts until the block ends.

The one marker, an HTML comment (invisible on GitHub and PyPI) on the line right before a block's fence:

    <!-- readme-test: skip (REASON) -->

leaves that block out; REASON must say why (a `pip install` from PyPI, `make test` which runs this test).
A marker anywhere else, or without a reason, fails the test, so a skip can never be silent.

Preconditions, as after `make demo`: a Docker engine with buildx and the demo's base image; the copy's
`.venv` is made here (no pip, no network): this environment's dependencies through a .pth file, and the
copy itself as bakegen (like `pip install -e .`). Images are tagged under a repository of this test
alone (REPO in the environment, which bake honours like any bake variable), so the shared demo tags of
other runs are never replaced; what the README pushes to the local registry is deleted afterwards.

After the last block, `git status` of the copy must be clean: every file the README's commands produce
is git-ignored.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from bakegen.dockerhost import registry_reachable
from tests.conftest import ROOT, clean_env, delete_repository, remove_images
from tests.test_packaging import dependencies_only

README = ROOT / "README.md"
SHELL_FENCE = re.compile(r"^```(sh|bash|shell)\s*$")
SKIP_MARKER = re.compile(r"^<!-- readme-test: skip \((?P<reason>[^)]+)\) -->$")
ANY_MARKER = re.compile(r"readme-test")
GIT = ["git", "-c", "user.name=bakegen tests", "-c", "user.email=tests@bakegen.invalid", "-c", "commit.gpgsign=false"]


@dataclass(frozen=True)
class ShellBlock:
    line: int  # of the opening fence, 1-based
    text: str
    skip_reason: str | None


def shell_blocks(markdown: str) -> list[ShellBlock]:
    lines = markdown.splitlines()
    blocks: list[ShellBlock] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if ANY_MARKER.search(line) and not (SKIP_MARKER.match(line) and index + 1 < len(lines) and SHELL_FENCE.match(lines[index + 1])):
            raise ValueError(
                f"README.md:{index + 1}: a readme-test marker must be `<!-- readme-test: skip (REASON) -->` right before a shell block"
            )
        if SHELL_FENCE.match(line) or (line.startswith("```") and line.strip() != "```"):
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            if SHELL_FENCE.match(line):
                marker = SKIP_MARKER.match(lines[index - 1]) if index else None
                blocks.append(ShellBlock(index + 1, "\n".join(lines[index + 1 : end]) + "\n", marker["reason"] if marker else None))
            index = end + 1
            continue
        index += 1
    return blocks


def test_markers_are_parsed_and_checked() -> None:
    sample = "a\n<!-- readme-test: skip (CI only) -->\n```sh\nmake ci\n```\n```yaml\nx: 1\n```\n```bash\necho hi\n```\n"
    assert shell_blocks(sample) == [ShellBlock(3, "make ci\n", "CI only"), ShellBlock(9, "echo hi\n", None)]
    with pytest.raises(ValueError, match=r"README\.md:1"):
        shell_blocks("<!-- readme-test: skip -->\n```sh\nls\n```\n")  # no reason
    with pytest.raises(ValueError, match=r"README\.md:1"):
        shell_blocks("<!-- readme-test: skip (far away) -->\n\n```sh\nls\n```\n")  # not right before the fence
    blocks = shell_blocks(README.read_text())
    assert len([block for block in blocks if block.skip_reason is None]) >= 3
    assert all(block.skip_reason for block in blocks if "pip install bakegen" in block.text or "make test" in block.text)


def fresh_copy(destination: Path) -> Path:
    """The checkout as a reader's clone: its files (committed or not, never the ignored ones) in a new git repository."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True
    )
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    subprocess.run([*GIT, "init", "-q"], cwd=destination, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=destination, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "fresh clone"], cwd=destination, check=True)
    return destination


def make_venv(copy: Path) -> Path:
    """`.venv` as `make demo` leaves it, offline: the dependencies of this test run, and the copy as bakegen."""
    venv = copy / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site] = (venv / "lib").glob("python3*/site-packages")
    (site / "dependencies.pth").write_text(f"{dependencies_only(copy.parent / 'dependencies')}\n")
    (site / "bakegen-checkout.pth").write_text(f"{copy}\n")
    for script, module in (("bakegen", "bakegen.main"), ("check-jsonschema", "check_jsonschema")):
        path = venv / "bin" / script
        path.write_text(f"#!{venv}/bin/python\nimport sys\nfrom {module} import main\nsys.exit(main())\n")
        path.chmod(0o755)
    return venv


# The examples block pushes every demo image by digest for two platforms: about 20 minutes on a
# loaded 2-core machine.
BLOCK_TIMEOUT_SECONDS = 3600


def run_block(block: ShellBlock, copy: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run one block in a process group of its own, so a timeout stops its commands too, not only bash."""
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", block.text],
        cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = process.communicate(timeout=BLOCK_TIMEOUT_SECONDS)
    except BaseException:
        os.killpg(process.pid, signal.SIGINT)  # bakegen removes its containers on an interrupt
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        raise
    return process.returncode, output


@pytest.mark.docker
@pytest.mark.registry
@pytest.mark.slow
def test_every_shell_block_runs_in_order(tmp_path: Path) -> None:
    copy = fresh_copy(tmp_path / "clone")
    venv = make_venv(copy)
    repository = f"localhost:5000/bakegen-readme-{uuid.uuid4().hex[:8]}"
    blocks = shell_blocks((copy / "README.md").read_text())
    pushed = sorted({match for block in blocks for match in re.findall(r"REPO=(localhost:5000/[\w./-]+)", block.text)})
    env = clean_env(REPO=repository, VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}:{clean_env()['PATH']}")
    env.pop("PYTHONPATH", None)  # the copy's bakegen, never this checkout's
    try:
        for block in blocks:
            if block.skip_reason:
                continue
            returncode, output = run_block(block, copy, env)
            assert returncode == 0, f"README.md:{block.line}: exit {returncode}\n{block.text}\n{output[-4000:]}"
            assert "Traceback" not in output, f"README.md:{block.line}:\n{output}"
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=copy, capture_output=True, text=True)
        assert status.stdout == "", f"files the README's commands produce that are not git-ignored (or changed):\n{status.stdout}"
    finally:
        remove_images(repository)
        if registry_reachable():
            delete_repository(repository)  # the README's pushes go to REPO, this test's own repository
        for pushed_repository in pushed:
            remove_images(pushed_repository)
            if registry_reachable():
                delete_repository(pushed_repository)
