"""spec.py: YAML with positions, schema errors located as FILE:LINE:COL: path: message."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakegen.errors import BakegenError
from bakegen.spec import format_path, load_spec
from tests.conftest import LLAMA_SPEC, MINIMAL_SPEC, write_spec


def errors_of(path: Path) -> list[str]:
    with pytest.raises(BakegenError) as caught:
        load_spec(path)
    return [str(d) for d in caught.value.diagnostics]


def test_loads_example_with_positions() -> None:
    spec = load_spec(LLAMA_SPEC)
    assert spec.data["image"]["repository"] == "ghcr.io/ggml-org/llama.cpp"
    line, _ = spec.where(("variants", "cuda", "args", "CUDA_VERSION"))
    assert "CUDA_VERSION: 12.4.0" in LLAMA_SPEC.read_text().splitlines()[line - 1]


def test_every_schema_error_at_once_with_line_and_path(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        """\
version: 1
image: {repository: example.com/app}
stages: [full]
variants:
  cpu:
    dockerfile: Dockerfile
    platforms: linux/amd64
    colour: blue
  cuda:
    dockerfile: 12
""",
    )
    errors = errors_of(path)
    assert len(errors) == 3
    assert errors[0].startswith(f"{path}:7:16: variants.cpu.platforms: ")
    assert "is not of type 'array'" in errors[0]
    assert errors[1].startswith(f"{path}:8:5: variants.cpu.colour: unknown key 'colour'")
    assert "expected one of: aliases, args" in errors[1]
    assert errors[2] == f'{path}:10:17: variants.cuda.dockerfile: expected a string, got the number 12; quote it: "12"'


def test_unquoted_version_number_gets_a_hint(tmp_path: Path) -> None:
    path = write_spec(tmp_path, MINIMAL_SPEC.replace('"12.4.0"', "12.4"))
    [error] = errors_of(path)
    assert error.endswith('variants.cuda.args.CUDA_VERSION: expected a string, got the number 12.4; quote it: "12.4"')
    assert ":11:" in error


def test_empty_variants(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "version: 1\nimage: {repository: a/b}\nstages: [x]\nvariants: {}\n")
    assert errors_of(path) == [f"{path}:4:11: variants: must not be empty"]


def test_missing_required_key(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "version: 1\nimage: {repository: a/b}\nvariants: {cpu: {dockerfile: D}}\n")
    assert errors_of(path) == [f"{path}:1:1: 'stages' is a required property"]


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "version: 1\nimage: [unclosed\nstages: x\n")
    [error] = errors_of(path)
    assert error.startswith(f"{path}:3:")
    assert "YAML syntax error" in error


def test_duplicate_key_is_an_error_not_last_wins(tmp_path: Path) -> None:
    path = write_spec(tmp_path, MINIMAL_SPEC + "stages: [other]\n")
    assert errors_of(path) == [f"{path}:12:1: stages: duplicate key (first defined on line 3)"]


def test_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bakegen.yaml"
    path.write_bytes(b"version: 1\nimage: {repository: caf\xe9}\n")
    assert errors_of(path) == [f"{path}:2:24: not valid UTF-8 (byte 0xe9); save the spec as UTF-8"]


def test_directory_and_missing_file(tmp_path: Path) -> None:
    assert errors_of(tmp_path) == [f"{tmp_path}: is a directory; expected a spec file such as {tmp_path / 'bakegen.yaml'}"]
    assert errors_of(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: no such file"]


def test_empty_file(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "# nothing\n")
    [error] = errors_of(path)
    assert "the spec is empty" in error


def test_bad_pattern_explains_what_is_expected(tmp_path: Path) -> None:
    path = write_spec(tmp_path, MINIMAL_SPEC.replace("stages: [full, server]", "stages: [full, 'my stage']"))
    [error] = errors_of(path)
    assert "stages[1]: 'my stage' is not valid here; expected a variant or stage name" in error


def test_yaml_keys_stay_strings(tmp_path: Path) -> None:
    # `on:` or `yes:` are booleans to YAML 1.1; as keys they must stay what was written.
    spec = load_spec(write_spec(tmp_path, MINIMAL_SPEC + "labels: {on: 'yes', 'off': x}\n"))
    assert spec.data["labels"] == {"on": "yes", "off": "x"}


def test_merge_keys(tmp_path: Path) -> None:
    text = MINIMAL_SPEC.replace("  cpu:\n", "  cpu: &base\n") + "  rocm:\n    <<: *base\n    suffix: -rocm\n"
    spec = load_spec(write_spec(tmp_path, text))
    assert spec.data["variants"]["rocm"] == {"dockerfile": "Dockerfile", "suffix": "-rocm", "platforms": ["linux/amd64", "linux/arm64"]}


def test_format_path() -> None:
    assert format_path(("variants", "cuda", "platforms", 1)) == "variants.cuda.platforms[1]"
    assert format_path(("labels", "org.opencontainers.image.source")) == 'labels["org.opencontainers.image.source"]'


def test_schema_cache_remembers_only_successes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    good = write_spec(tmp_path, MINIMAL_SPEC)
    load_spec(good)
    assert len(list((tmp_path / "cache" / "bakegen" / "schema-valid").iterdir())) == 1
    load_spec(good)  # served from the cache, still valid
    bad = write_spec(tmp_path, MINIMAL_SPEC.replace("version: 1", "version: 2"), "bad.yaml")
    for _ in range(2):  # a failure is reported every time, never remembered
        assert errors_of(bad) == [f"{bad}:1:10: version: expected 1, got 2"]
    assert len(list((tmp_path / "cache" / "bakegen" / "schema-valid").iterdir())) == 1


def test_every_schema_property_has_a_description() -> None:
    import json

    schema = json.loads((Path(__file__).resolve().parent.parent / "schema" / "bakegen.schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    missing: list[str] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if "description" not in sub:
                    missing.append(f"{where}.{name}")
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}[{index}]")

    walk(schema, "$")
    assert missing == []
