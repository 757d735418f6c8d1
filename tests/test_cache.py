"""cache.py: a cache never breaks a run. Corrupt, truncated, unreadable or unwritable is a miss."""

from __future__ import annotations

import errno
import os
import socket
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from bakegen import cache
from bakegen.cache import cache_dir, cache_key, jinja_bytecode_cache, load_entry, remember, remembered, store_entry

KEY = cache_key("test", "input")


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("BAKEGEN_NO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def entry_file(kind: str, key: str) -> Path:
    directory = cache_dir(kind)
    assert directory is not None
    return directory / key


def test_round_trip_and_miss() -> None:
    assert load_entry("test", KEY) is None
    store_entry("test", KEY, b"payload")
    assert load_entry("test", KEY) == b"payload"
    assert load_entry("test", cache_key("test", "other input")) is None


def test_key_depends_on_bakegen_version_and_every_part(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache_key("a", "b") == cache_key("a", "b")
    assert cache_key("a", "b") != cache_key("ab", "")  # parts are delimited, not concatenated
    assert cache_key("a", b"b") == cache_key("a", "b")
    before = cache_key("a", "b")
    monkeypatch.setattr(cache, "__version__", "99.0.0")
    assert cache_key("a", "b") != before


def test_entries_are_written_atomically_and_privately() -> None:
    store_entry("test", KEY, b"x" * 1000)
    directory = entry_file("test", KEY).parent
    assert [p.name for p in directory.iterdir()] == [KEY]  # no temporary file left behind
    assert stat.S_IMODE(entry_file("test", KEY).stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE(directory.stat().st_mode) & 0o077 == 0


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 1]), id="bit-flip-in-payload"),
        pytest.param(lambda data: b"garbage" + data, id="bad-header"),
        pytest.param(lambda data: data + b"more", id="appended"),
    ],
)
def test_damaged_entry_is_a_miss_then_is_rewritten(damage: object) -> None:
    store_entry("test", KEY, b"payload")
    path = entry_file("test", KEY)
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    assert load_entry("test", KEY) is None
    store_entry("test", KEY, b"payload")
    assert load_entry("test", KEY) == b"payload"


def test_an_entry_under_another_key_name_is_a_miss() -> None:
    # A file renamed (or copied) to another key's name must not answer for it.
    store_entry("test", KEY, b"payload")
    other = cache_key("test", "other")
    entry_file("test", KEY).rename(entry_file("test", other))
    assert load_entry("test", other) is None


def test_fifo_at_an_entry_path_is_a_miss_without_blocking() -> None:
    os.mkfifo(entry_file("test", KEY))
    result: list[bytes | None] = []
    reader = threading.Thread(target=lambda: result.append(load_entry("test", KEY)), daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert not reader.is_alive(), "reading a FIFO entry blocked"
    assert result == [None]
    store_entry("test", KEY, b"payload")  # replaces the FIFO atomically
    assert load_entry("test", KEY) == b"payload"


def test_directory_socket_and_symlink_at_an_entry_path_are_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry_file("test", KEY).mkdir()
    assert load_entry("test", KEY) is None
    store_entry("test", KEY, b"x")  # cannot replace a directory: ignored
    other = cache_key("socket")
    monkeypatch.chdir(entry_file("test", other).parent)  # a socket's path is limited to ~100 bytes
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(other)
        assert load_entry("test", other) is None
    linked = cache_key("symlink")
    (tmp_path / "elsewhere").write_bytes(b"not an entry")
    entry_file("test", linked).symlink_to(tmp_path / "elsewhere")
    assert load_entry("test", linked) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a device node")
def test_device_at_an_entry_path_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    os.mknod(entry_file("test", KEY), stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero
    reads: list[int] = []
    real_read = os.read

    def counting_read(fd: int, size: int) -> bytes:
        reads.append(size)
        return real_read(fd, size)

    monkeypatch.setattr(os, "read", counting_read)
    assert load_entry("test", KEY) is None
    assert reads == []


def test_oversized_entry_is_a_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    store_entry("test", KEY, b"x" * 100)
    monkeypatch.setattr(cache, "MAX_ENTRY_BYTES", 50)
    assert load_entry("test", KEY) is None


def test_xdg_cache_home_naming_a_file_turns_the_cache_off(cache_home: Path) -> None:
    cache_home.parent.mkdir(exist_ok=True)
    cache_home.write_text("a file, not a directory")
    assert cache_dir("test") is None
    store_entry("test", KEY, b"x")
    remember("test", KEY)
    assert not remembered("test", KEY)
    assert load_entry("test", KEY) is None
    assert jinja_bytecode_cache() is None


def test_relative_xdg_cache_home_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The XDG spec: relative paths are invalid. A relative one would write into the current directory.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir("test") == tmp_path / "home" / ".cache" / "bakegen" / "test"
    assert not (tmp_path / "relative").exists()


def test_no_home_at_all_is_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", no_home)
    assert cache_dir("test") is None
    assert not remembered("test", KEY)


def test_bakegen_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAKEGEN_NO_CACHE", "1")
    remember("test", KEY)
    assert not remembered("test", KEY)
    assert jinja_bytecode_cache() is None


def test_read_only_cache_dir_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root here, where chmod cannot make a directory unwritable: simulate EROFS,
    # what a read-only HOME with an existing cache dir gives.
    remember("test", KEY)

    def read_only(*args: object, **kwargs: object) -> object:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("tempfile.mkstemp", read_only)
    remember("test", cache_key("new"))
    store_entry("test", cache_key("new"), b"x")
    assert not remembered("test", cache_key("new"))
    assert remembered("test", KEY)  # what is there is still read


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any mode bits")
def test_unwritable_cache_dir_by_mode(cache_home: Path) -> None:
    directory = entry_file("test", KEY).parent
    directory.chmod(0o500)
    try:
        remember("test", KEY)
        assert not remembered("test", KEY)
    finally:
        directory.chmod(0o700)


def test_failed_write_leaves_no_temporary_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(source: object, target: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    store_entry("test", KEY, b"payload")
    directory = entry_file("test", KEY).parent
    assert list(directory.iterdir()) == []


def test_directory_writable_by_others_is_tightened() -> None:
    directory = entry_file("test", KEY).parent
    directory.chmod(0o777)
    assert cache_dir("test") == directory
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_directory_owned_by_another_user_is_not_used() -> None:
    # Like Jinja's own default cache dir: an entry can hold compiled code, so it must be ours.
    directory = entry_file("test", KEY).parent
    os.chown(directory, 65534, 65534)
    assert cache_dir("test") is None
    assert not remembered("test", KEY)


def test_bad_kind_or_key_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        cache_dir("../escape")
    with pytest.raises(ValueError):
        store_entry("test", "../../etc/passwd", b"")


# --- the Jinja bytecode cache ------------------------------------------------------------


def render_twice_with_cache() -> list[str]:
    from jinja2 import Environment, FunctionLoader

    results = []
    for _ in range(2):
        env = Environment(bytecode_cache=jinja_bytecode_cache())
        env.loader = FunctionLoader(lambda name: ("{{ x * 2 }}", None, lambda: True))
        results.append(env.get_template("t").render(x=21))
    return results


def jinja_entries() -> list[Path]:
    directory = cache_dir("jinja")
    assert directory is not None
    return [p for p in directory.iterdir() if not p.name.startswith(".")]


def test_jinja_cache_stores_and_reuses_compiled_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from jinja2 import Environment

    assert render_twice_with_cache() == ["42", "42"]
    assert len(jinja_entries()) == 1
    compiled: list[str] = []
    original = Environment.compile

    def counting_compile(self: Environment, *args: Any, **kwargs: Any) -> Any:
        compiled.append("once")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Environment, "compile", counting_compile)
    assert render_twice_with_cache() == ["42", "42"]
    assert compiled == []  # both renders loaded the stored code


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:-8], id="truncated-marshal"),
        pytest.param(lambda data: b"\x00" * len(data), id="zeroed"),
        pytest.param(lambda data: os.urandom(64), id="random"),
    ],
)
def test_corrupt_jinja_entry_is_recompiled(damage: object) -> None:
    render_twice_with_cache()
    [entry] = jinja_entries()
    entry.write_bytes(damage(entry.read_bytes()))  # type: ignore[operator]
    assert render_twice_with_cache() == ["42", "42"]
    assert load_entry("jinja", entry.name) is not None  # rewritten whole


def test_jinja_entry_holding_something_other_than_code_is_ignored() -> None:
    import marshal

    render_twice_with_cache()
    [entry] = jinja_entries()
    # A well-formed entry (right checksum) whose payload is not a code object.
    store_entry("jinja", entry.name, marshal.dumps(12345))
    assert render_twice_with_cache() == ["42", "42"]


def test_stock_jinja_cache_breaks_on_a_truncated_file(tmp_path: Path) -> None:
    """Why jinja_bytecode_cache exists: Jinja's own cache raises on a truncated file."""
    from jinja2 import Environment, FileSystemBytecodeCache, FunctionLoader

    def render() -> str:
        env = Environment(bytecode_cache=FileSystemBytecodeCache(str(tmp_path)))
        env.loader = FunctionLoader(lambda name: ("{{ x }}", None, lambda: True))
        return env.get_template("t").render(x=1)

    render()
    [stored] = list(tmp_path.glob("__jinja2_*.cache"))
    stored.write_bytes(stored.read_bytes()[:20])
    with pytest.raises(Exception):  # noqa: B017 (EOFError or pickle's UnpicklingError, depending on where it is cut)
        render()


def test_jinja_cache_with_unwritable_dir_still_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(*args: object, **kwargs: object) -> object:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("tempfile.mkstemp", read_only)
    assert render_twice_with_cache() == ["42", "42"]
    assert jinja_entries() == []
