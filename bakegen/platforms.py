"""The OS/architecture vocabulary of OCI platforms (`linux/arm/v7`), and per-platform tag suffixes."""

from __future__ import annotations

KNOWN_OS = frozenset({"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix", "wasip1", "js"})
KNOWN_ARCH = frozenset(
    {"amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64", "mips64le", "mips64", "mipsle", "mips", "loong64", "wasm"}
)
ARCH_VARIANTS = {
    "arm": frozenset({"v5", "v6", "v7", "v8"}),
    "arm64": frozenset({"v8", "v9"}),
    "amd64": frozenset({"v1", "v2", "v3", "v4"}),
    "riscv64": frozenset({"rva20u64", "rva22u64"}),
}


def platform_problem(platform: str) -> str | None:
    """Why `platform` is not a valid OCI platform, or None when it is."""
    os_name, _, rest = platform.partition("/")
    arch, _, variant = rest.partition("/")
    if os_name not in KNOWN_OS:
        return f"unknown OS {os_name!r} in platform {platform!r} (e.g. linux/amd64, linux/arm64)"
    if arch not in KNOWN_ARCH:
        return f"unknown architecture {arch!r} in platform {platform!r} (known: {', '.join(sorted(KNOWN_ARCH))})"
    if variant and (variant not in ARCH_VARIANTS.get(arch, frozenset()) or "/" in variant):
        return f"unknown variant {variant!r} for {arch} in platform {platform!r}"
    return None


def platform_suffix(platform: str) -> str:
    """A short name of a platform for tags and cache refs: linux/amd64 -> amd64, linux/arm/v7 -> armv7."""
    os_name, *rest = platform.split("/")
    return "".join(rest) if os_name == "linux" else "-".join([os_name, *rest])
