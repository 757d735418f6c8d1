"""A small on-disk cache in the user cache dir ($XDG_CACHE_HOME/bakegen or ~/.cache/bakegen).

Used for results that are pure functions of their inputs: the schema check of a spec
(only successes are remembered) and Jinja's compiled template. BAKEGEN_NO_CACHE=1 turns it off.

A cache must never break a run, so every failure here is a miss, silently:
- keys are hashes of bakegen's version and every input (cache_key), so an upgrade or a
  changed input never meets an old entry;
- an entry is written to a temporary file and renamed into place, and carries the SHA-256
  of its payload: a truncated or corrupt entry (disk full, crash, a bit flip) fails the check
  and reads as a miss, then is overwritten;
- an unwritable or missing cache dir (read-only HOME, XDG_CACHE_HOME naming a file, a
  directory without permission) means no cache; a FIFO or device at an entry's path is
  never read;
- like Jinja's own default cache dir, a directory another user owns or can write to is not
  used: an entry can hold compiled code (Jinja's), which must come from this user only.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from bakegen import __version__

if TYPE_CHECKING:
    from jinja2.bccache import FileSystemBytecodeCache

# Larger than any entry bakegen writes (the compiled bake template is about 30 KiB);
# a bigger file at an entry's path is not an entry.
MAX_ENTRY_BYTES = 16 << 20

_ENTRY_MAGIC = b"bakegen-cache 1\n"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_KEY = re.compile(r"[0-9a-f]{16,128}")


def cache_dir(kind: str) -> Path | None:
    """The directory of one kind of entry, created if needed; None when there is no usable cache."""
    if not _NAME.fullmatch(kind):
        raise ValueError(f"cache kind must be a short lowercase name, got {kind!r}")
    if os.environ.get("BAKEGEN_NO_CACHE") == "1":
        return None
    root = _cache_root()
    if root is None:
        return None
    try:
        root.mkdir(parents=True, exist_ok=True)
        for directory in (root / "bakegen", root / "bakegen" / kind):
            # 0o700: entries are this user's; the umask can only take bits away.
            directory.mkdir(mode=0o700, exist_ok=True)
            if not _private_directory(directory):
                return None
    except (OSError, ValueError):
        return None
    return root / "bakegen" / kind


def _cache_root() -> Path | None:
    configured = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec: a relative path is invalid and must be ignored.
    if configured and os.path.isabs(configured):
        return Path(configured)
    try:
        return Path.home() / ".cache"
    except (RuntimeError, KeyError, OSError):  # no HOME and no passwd entry
        return None


def _private_directory(directory: Path) -> bool:
    """A directory this user owns that nobody else can write to (tightened if it is ours)."""
    info = directory.stat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        return False
    if info.st_mode & 0o022:
        os.chmod(directory, stat.S_IMODE(info.st_mode) & ~0o022)
    return True


def cache_key(*parts: str | bytes) -> str:
    """A hex key for a result computed from `parts`; bakegen's version is always part of it."""
    digest = hashlib.sha256()
    for part in (__version__, *parts):
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        # Length-prefixed, so ("ab", "c") and ("a", "bc") are different keys.
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def load_entry(kind: str, key: str) -> bytes | None:
    """The payload stored under `key`, or None: missing, unreadable, truncated or corrupt."""
    path = _entry_path(kind, key)
    if path is None:
        return None
    data = read_regular_file(path, MAX_ENTRY_BYTES)
    if data is None:
        return None
    header = _ENTRY_MAGIC + key.encode() + b"\n"
    if not data.startswith(header):
        return None
    digest, payload = data[len(header) : len(header) + 32], data[len(header) + 32 :]
    if hashlib.sha256(payload).digest() != digest:
        return None
    return payload


def store_entry(kind: str, key: str, payload: bytes) -> None:
    """Store `payload` under `key` atomically; any failure (read-only, disk full) is ignored."""
    path = _entry_path(kind, key)
    if path is None:
        return
    data = _ENTRY_MAGIC + key.encode() + b"\n" + hashlib.sha256(payload).digest() + payload
    with contextlib.suppress(OSError):
        _write_atomic(path, data)


def remembered(kind: str, key: str) -> bool:
    """Whether `remember(kind, key)` was called before (and its entry is intact)."""
    return load_entry(kind, key) is not None


def remember(kind: str, key: str) -> None:
    store_entry(kind, key, b"")


def _entry_path(kind: str, key: str) -> Path | None:
    if not _KEY.fullmatch(key):
        raise ValueError(f"cache key must be lowercase hex (see cache_key), got {key!r}")
    directory = cache_dir(kind)
    return directory / key if directory else None


def read_regular_file(path: Path, limit: int) -> bytes | None:
    """The bytes of a regular file of at most `limit` bytes; None for anything else or any error.

    Opened without following a symlink and with O_NONBLOCK, so a FIFO put at the path cannot
    hang the run; the opened file is checked to be a regular file before a byte is read.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks) if size <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    # No fsync: after a crash, a half-written entry fails its checksum and is a miss.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def jinja_bytecode_cache() -> FileSystemBytecodeCache | None:
    """A Jinja bytecode cache in the bakegen cache dir that can never break a render, or None.

    Entries are keyed on bakegen's, Jinja's and Python's bytecode versions as well as the
    template (Jinja's key and source checksum); a corrupt or truncated entry is recompiled.
    Jinja's own FileSystemBytecodeCache unpickles the file and raises on truncated data; this
    one never unpickles and never raises.
    """
    directory = cache_dir("jinja")
    if directory is None:
        return None
    return _robust_bytecode_cache_class()(str(directory))


@functools.cache
def _robust_bytecode_cache_class() -> type[FileSystemBytecodeCache]:
    # Jinja is imported here, not at the top: only `render` compiles a template.
    import importlib.util
    import marshal
    import types

    import jinja2
    from jinja2.bccache import Bucket, FileSystemBytecodeCache

    def entry_key(bucket: Bucket) -> str:
        return cache_key("jinja", jinja2.__version__, importlib.util.MAGIC_NUMBER, bucket.key, bucket.checksum)

    class RobustBytecodeCache(FileSystemBytecodeCache):
        """FileSystemBytecodeCache whose corrupt, truncated or unreadable files are misses."""

        def load_bytecode(self, bucket: Bucket) -> None:
            payload = load_entry("jinja", entry_key(bucket))
            if payload is None:
                return
            try:
                code = marshal.loads(payload)
            except (EOFError, ValueError, TypeError):
                return
            if isinstance(code, types.CodeType):
                bucket.code = code

        def dump_bytecode(self, bucket: Bucket) -> None:
            if bucket.code is None:
                return
            try:
                payload = marshal.dumps(bucket.code)
            except ValueError:
                return
            store_entry("jinja", entry_key(bucket), payload)

    return RobustBytecodeCache
