"""spec.py: YAML with positions, schema errors located as FILE:LINE:COL: path: message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from bakegen.errors import BakegenError
from bakegen.spec import display_path, format_path, load_spec
from tests.conftest import LLAMA_SPEC, MINIMAL_SPEC, write_spec


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own cache: what one test remembers must not answer for another."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


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
    # The byte is not shown: the file may be something other than a spec (a key, a keyring).
    assert errors_of(path) == [f"{path}:2:24: not valid UTF-8; save the spec as UTF-8"]


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


# --- hostile input (the CLI-level cases are in tests/corpus/, run by test_corpus.py) -------


def build(text: str) -> tuple[object, list[str]]:
    """The data the loader builds from YAML text, before the schema, and its problems."""
    from bakegen.spec import _Builder, _Composer

    root = _Composer("t.yaml").compose(text)
    assert root is not None
    builder = _Builder("t.yaml")
    return builder.build(root, (), 0), [str(p) for p in builder.problems]


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: [x, 'y', \"z\", 0x1f, 0o17, 1_000, 1:30, -2.5e3, .5, true, no, ~, null, '']\n",
        "base: &b {x: 1, y: 2}\nuse: {<<: *b, y: 3}\n",
        "a: &a {p: 1}\nb: &b {q: 2, p: 9}\nc: {<<: [*a, *b], r: 3}\n",
        "a: &a {p: 1}\nb: &b {<<: *a, q: 2}\nc: {<<: *b}\n",
        "x: &x {k: 1}\na: &a {<<: *x, q: 2}\nb: &b {k: 3}\nc: {<<: [*a, *b]}\n",  # what *a merges beats *b
        "s: &s hello\nl: [*s, *s]\nm: {k: *s}\n",
        "block: |\n  line one\n  line two\nfolded: >-\n  a\n  b\n",
        "x: !!str 12\ny: !!int '7'\nz: !!float '1'\nw: !!bool 'yes'\n",
    ],
)
def test_builds_the_same_data_as_pyyaml(text: str) -> None:
    data, problems = build(text)
    assert problems == []
    assert data == yaml.safe_load(text)


def test_unquoted_date_stays_the_text_as_written(tmp_path: Path) -> None:
    text = MINIMAL_SPEC.replace('{CUDA_VERSION: "12.4.0"}', "{BUILD_DATE: 2024-01-01, STAMP: 2001-12-14 21:59:43.10 -5}")
    spec = load_spec(write_spec(tmp_path, text))
    assert spec.data["variants"]["cuda"]["args"] == {"BUILD_DATE": "2024-01-01", "STAMP": "2001-12-14 21:59:43.10 -5"}


def test_values_reached_through_an_alias_are_located_at_the_alias(tmp_path: Path) -> None:
    text = MINIMAL_SPEC.replace("stages: [full, server]", "stages: &s [full, server]") + "labels: *s\n"
    [error] = errors_of(write_spec(tmp_path, text))
    assert error.startswith(f"{tmp_path / 'bakegen.yaml'}:12:9: labels: ")


def test_explicit_timestamp_and_binary_are_errors() -> None:
    data, problems = build("a: !!timestamp 2024-01-01\nb: !!binary aGk=\nc: ok\n")
    assert problems == [
        "t.yaml:1:4: a: unsupported YAML tag !!timestamp; write the value as a quoted string",
        "t.yaml:2:4: b: unsupported YAML tag !!binary; write the value as a quoted string",
    ]
    assert data == {"a": "2024-01-01", "b": "aGk=", "c": "ok"}  # placeholders the schema is not asked about


def test_a_value_that_failed_is_reported_once(tmp_path: Path) -> None:
    # `version` must be 1; the bad tag is the problem, not also "expected 1".
    text = MINIMAL_SPEC.replace("version: 1", "version: !!int one")
    assert errors_of(write_spec(tmp_path, text)) == [f"{tmp_path / 'bakegen.yaml'}:1:10: version: not a valid !!int value"]


def test_data_with_a_placeholder_is_never_remembered_as_valid(tmp_path: Path) -> None:
    # `!!int one` fails and leaves the text "one" in the data, whose schema error is not shown;
    # that must not make the same data, written plainly, pass from the cache.
    path = write_spec(tmp_path, MINIMAL_SPEC.replace("version: 1", "version: !!int one"))
    assert errors_of(path) == [f"{path}:1:10: version: not a valid !!int value"]
    path = write_spec(tmp_path, MINIMAL_SPEC.replace("version: 1", "version: one"))
    assert errors_of(path) == [f"{path}:1:10: version: expected 1, got 'one'"]


def test_node_and_depth_limits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import bakegen.spec

    monkeypatch.setattr(bakegen.spec, "MAX_NODES", 30)
    path = write_spec(tmp_path, "version: [" + ", ".join(["1"] * 40) + "]\n")
    assert errors_of(path) == [f"{path}:1:92: more than 30 YAML nodes; a spec is much smaller"]
    path = write_spec(tmp_path, "version: &a [1, 2, 3, 4, 5, 6]\nstages: [*a, *a, *a, *a]\n")
    assert errors_of(path) == [f"{path}:2:22: more than 30 values after expanding aliases; a spec is much smaller"]
    monkeypatch.setattr(bakegen.spec, "MAX_DEPTH", 3)
    path = write_spec(tmp_path, "version: [[[x]]]\n")
    assert errors_of(path) == [f"{path}:1:13: nested more than 3 levels deep; a spec is much flatter"]
    path = write_spec(tmp_path, "version: 1\na: &a [[x]]\nstages: [*a]\n")
    assert errors_of(path) == [f"{path}:3:10: nested more than 3 levels deep (after expanding aliases); a spec is much flatter"]


def test_a_file_that_is_not_a_spec_is_never_quoted(tmp_path: Path) -> None:
    secret = "hunter2-7c1e"
    for text in [
        f"PASSWORD={secret}\n",
        f"- {secret}\n",
        f'{{"auths": {{"r.example": {{"auth": "{secret}"}}}}, "{secret}": 1}}\n',
        f"user: {secret}\npass: !!binary {secret}\n",
        f"token: '{secret}\n",
        f"[{secret}\n",
    ]:
        path = write_spec(tmp_path, text)
        errors = errors_of(path)
        assert len(errors) == 1
        assert secret not in errors[0]
        assert errors[0].startswith(f"{path}:")


def test_one_spec_key_makes_it_a_spec_whose_problems_are_all_shown(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "stages: [x]\ncolour: blue\n")
    assert f"{path}:2:1: colour: unknown key 'colour'; expected one of: annotations" in "\n".join(errors_of(path))


def test_long_values_and_keys_are_shortened_in_messages(tmp_path: Path) -> None:
    long = "x" * 5000
    path = write_spec(tmp_path, MINIMAL_SPEC.replace("stages: [full, server]", f"stages: ['{long} y']\n? {long}\n: 1"))
    errors = errors_of(path)
    assert len(errors) == 2
    assert all(len(error) < len(str(path)) + 400 for error in errors), errors


def test_display_path() -> None:
    assert display_path("/a/b.yaml") == "/a/b.yaml"
    assert display_path(os.fsdecode(b"/a/caf\xe9.yaml")) == "/a/caf\\xe9.yaml"
    assert display_path("/a/\x1b[31mred\n.yaml") == "/a/\\x1b[31mred\\n.yaml"
    assert display_path("/a/café.yaml") == "/a/café.yaml"


def test_non_utf8_path_is_printable_in_diagnostics(tmp_path: Path) -> None:
    path = tmp_path / os.fsdecode(b"spec-\xff.yaml")
    path.write_text("version: 2\n")
    for error in errors_of(path):
        error.encode("utf-8")  # no lone surrogates: printable on any terminal
        assert error.startswith(f"{tmp_path}/spec-\\xff.yaml:1:")


def test_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "bakegen.yaml")
    assert errors_of(tmp_path / "bakegen.yaml") == [
        f"{tmp_path / 'bakegen.yaml'}: is a FIFO (named pipe); a spec is read only from a regular file"
    ]


def test_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bakegen.spec

    monkeypatch.setattr(bakegen.spec, "MAX_SPEC_BYTES", 64)
    path = write_spec(tmp_path, "version: 2\n" + "#" * 53 + "\n")  # 65 bytes
    assert errors_of(path) == [f"{path}: is larger than 64 bytes; a spec is a small text file"]
    path = write_spec(tmp_path, "version: 2\n" + "#" * 52 + "\n")  # 64 bytes: read, then checked
    assert f"{path}:1:10: version: expected 1, got 2" in errors_of(path)


def test_size_cap_is_checked_before_reading_and_on_what_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bakegen.spec

    monkeypatch.setattr(bakegen.spec, "MAX_SPEC_BYTES", 64)
    path = write_spec(tmp_path, "version: 2\n" + "#" * 100 + "\n")
    reads: list[int] = []
    real_read, real_stat = os.read, os.stat

    def counting_read(fd: int, size: int) -> bytes:
        reads.append(size)
        return real_read(fd, size)

    monkeypatch.setattr(os, "read", counting_read)
    assert errors_of(path) == [f"{path}: is larger than 64 bytes; a spec is a small text file"]
    assert reads == []  # refused on its size, unread
    # A file whose size the stat gets wrong (/proc reports 0) is cut off after the limit.
    monkeypatch.setattr(os, "stat", lambda p, **kw: os.stat_result((*real_stat(p, **kw)[:6], 0, *real_stat(p, **kw)[7:])))
    assert errors_of(path) == [f"{path}: is larger than 64 bytes; a spec is a small text file"]
    assert sum(reads) == 65


def test_schema_cache_key_includes_the_bakegen_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bakegen.cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    good = write_spec(tmp_path, MINIMAL_SPEC)
    load_spec(good)
    monkeypatch.setattr(bakegen.cache, "__version__", "99.0.0")
    load_spec(good)
    assert len(list((tmp_path / "cache" / "bakegen" / "schema-valid").iterdir())) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "token:\n\thunter2-7c1e: x\n",
            ":2:1: YAML syntax error: while scanning for the next token found character that cannot start any token",
        ),
        ("a: b\x07hunter2-7c1e\n", ":1:5: YAML error: special characters are not allowed"),
        ("é: b\x07hunter2-7c1e\n", ":1:5: YAML error: special characters are not allowed"),
        ('a: "\\qhunter2-7c1e"\n', ":1:6: YAML syntax error: while scanning a double-quoted scalar found unknown escape character"),
        ("version: " + "[" * 100 + "]" * 100 + "\n", ":1:74: nested more than 64 levels deep"),
        ("a: &a [*a]\n", ":1:8: recursive alias"),
    ],
)
def test_pure_python_parser_quotes_nothing_either(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str) -> None:
    """Without libyaml, PyYAML's messages quote the character they stop at; bakegen removes it."""
    import bakegen.spec

    monkeypatch.setattr(bakegen.spec, "_Loader", yaml.SafeLoader)
    monkeypatch.setattr(bakegen.spec, "_LIBYAML", False)
    path = write_spec(tmp_path, text)
    [error] = errors_of(path)
    assert error.startswith(f"{path}{expected}"), error
    assert "hunter2" not in error and "\\t" not in error and "\\x07" not in error and "'q'" not in error
