"""`bakegen completion SHELL`: scripts generated from the parser, checked by the shells themselves:
bash and fish complete real command lines; zsh parses the script and registers the function."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bakegen.commands.completion import describe
from bakegen.main import build_parser
from tests.conftest import Runner

SHELLS = ("bash", "zsh", "fish")


def script(bakegen: Runner, shell: str, tmp_path: Path) -> Path:
    result = bakegen("completion", shell)
    assert result.returncode == 0, result.stderr
    path = tmp_path / f"bakegen.{shell}"
    path.write_text(result.stdout)
    return path


def needs(shell: str) -> str:
    found = shutil.which(shell)
    if found is None:
        pytest.skip(f"{shell} is not installed")
    return found


@pytest.mark.parametrize("shell", SHELLS)
def test_every_verb_and_option_is_in_the_script(bakegen: Runner, shell: str, tmp_path: Path) -> None:
    text = script(bakegen, shell, tmp_path).read_text()
    command_line = describe(build_parser())
    assert {verb.name for verb in command_line.verbs} >= {"validate", "render", "bake", "smoke", "schema", "completion"}
    for verb in command_line.verbs:
        assert verb.name in text
        for option in verb.options:
            for flag in option.flags:
                assert (f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}") in text if shell == "fish" else flag in text


def test_unknown_shell_is_a_usage_error(bakegen: Runner) -> None:
    result = bakegen("completion", "tcsh")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def bash_complete(path: Path, line: str, cwd: Path) -> list[str]:
    """What TAB offers after `line` (words split on spaces; a trailing space starts a new word)."""
    words = line.split(" ")
    program = (
        f"source {path}\n"
        f"COMP_WORDS=({' '.join(repr(word) for word in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_bakegen\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run([needs("bash"), "--norc", "-c", program], cwd=cwd, capture_output=True, text=True, check=True)
    return sorted(filter(None, done.stdout.splitlines()))


def test_bash_completes_verbs_options_choices_and_files(bakegen: Runner, tmp_path: Path) -> None:
    path = script(bakegen, "bash", tmp_path)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "bakegen.yaml").write_text("")
    work = tmp_path / "work"
    assert bash_complete(path, "bakegen re", work) == ["render"]
    assert bash_complete(path, "bakegen comp", work) == ["completion"]
    assert bash_complete(path, "bakegen completion ", work) == ["bash", "fish", "zsh"]
    assert bash_complete(path, "bakegen render --fo", work) == ["--format"]
    assert bash_complete(path, "bakegen render --format ", work) == ["hcl", "json"]
    assert bash_complete(path, "bakegen validate -f bake", work) == ["bakegen.yaml"]
    assert bash_complete(path, "bakegen bake --var ", work) == []  # a free value: nothing offered
    assert "--junit-xml" in bash_complete(path, "bakegen smoke --", work)


def test_fish_completes_verbs_options_and_choices(bakegen: Runner, tmp_path: Path) -> None:
    path = script(bakegen, "fish", tmp_path)
    fish = needs("fish")

    def complete(line: str) -> list[str]:
        done = subprocess.run(
            [fish, "--no-config", "-c", f"source {path}; complete -C {line!r}"], cwd=tmp_path, capture_output=True, text=True, check=True
        )
        return sorted(entry.split("\t")[0] for entry in done.stdout.splitlines())

    assert complete("bakegen re") == ["render"]
    assert complete("bakegen completion ") == ["bash", "fish", "zsh"]
    assert complete("bakegen render --format ") == ["hcl", "json"]
    assert "--exit-code" in complete("bakegen render --")
    assert "--format" not in complete("bakegen plan --")


def test_zsh_parses_and_registers_the_script(bakegen: Runner, tmp_path: Path) -> None:
    path = script(bakegen, "zsh", tmp_path)
    zsh = needs("zsh")
    assert subprocess.run([zsh, "-n", str(path)], capture_output=True, text=True).returncode == 0
    program = f"autoload -U compinit && compinit -u -d {tmp_path}/zcompdump && source {path} && print -r -- $_comps[bakegen]"
    loaded = subprocess.run(
        [zsh, "-f", "-c", program], capture_output=True, text=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "_bakegen"
