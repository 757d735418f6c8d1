"""`bakegen schema`: the installed JSON Schema on stdout or in a file, usable by check-jsonschema;
its stable `$id` and `examples`; and the message for a check of two kinds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from tests.conftest import DEMO_DIR, MINIMAL_SPEC, ROOT, Runner, write_spec

SCHEMA_FILE = ROOT / "schema" / "bakegen.schema.json"
# Editors and check-jsonschema key caches on it: it names the spec format (version 1), never a release.
SCHEMA_ID = "urn:bakegen:schema:spec:1"


def test_prints_the_schema(bakegen: Runner) -> None:
    result = bakegen("schema")
    assert result.returncode == 0, result.stderr
    assert result.stdout == SCHEMA_FILE.read_text()
    assert json.loads(result.stdout)["$id"] == SCHEMA_ID


def test_writes_the_schema_atomically(bakegen: Runner, tmp_path: Path) -> None:
    target = tmp_path / "editor" / "bakegen.schema.json"
    result = bakegen("schema", "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert target.read_text() == SCHEMA_FILE.read_text()
    assert sorted(p.name for p in target.parent.iterdir()) == ["bakegen.schema.json"]  # no temporary file left
    assert bakegen("schema", "-o", str(tmp_path)).returncode == 2  # a directory: one line, no traceback


def test_examples_are_valid_specs(bakegen: Runner, tmp_path: Path) -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    Draft202012Validator.check_schema(schema)
    assert len(schema["examples"]) >= 2
    for number, example in enumerate(schema["examples"]):
        assert list(Draft202012Validator(schema).iter_errors(example)) == []
        spec = write_spec(tmp_path, yaml.safe_dump(example), f"example{number}.yaml")
        result = bakegen("validate", "-f", str(spec))
        assert result.returncode == 0, result.stderr  # Dockerfiles missing: warnings only


@pytest.mark.parametrize("spec", [DEMO_DIR / "bakegen.yaml", ROOT / "examples" / "llama.cpp" / "bakegen.yaml"])
def test_check_jsonschema_uses_the_printed_schema(bakegen: Runner, tmp_path: Path, spec: Path) -> None:
    schema = tmp_path / "bakegen.schema.json"
    assert bakegen("schema", "-o", str(schema)).returncode == 0
    checked = subprocess.run(
        [str(Path(sys.executable).parent / "check-jsonschema"), "--schemafile", str(schema), str(spec)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = write_spec(tmp_path, MINIMAL_SPEC + "cache: {type: s3}\n")
    checked = subprocess.run(
        [str(Path(sys.executable).parent / "check-jsonschema"), "--schemafile", str(schema), str(broken)], capture_output=True, text=True
    )
    assert checked.returncode == 1 and "s3" in checked.stdout + checked.stderr


def test_a_check_of_two_kinds_names_them(bakegen: Runner, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, MINIMAL_SPEC + "checks:\n  full:\n    - {name: both, file: /app, env: {A: b}}\n")
    result = bakegen("validate", "-f", str(spec))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.endswith("checks.full[0]: 2 kinds of check, file and env; a check has exactly one of run, http, file, env, label"), line
    assert "{" not in line  # not a Python dict
