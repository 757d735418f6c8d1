"""scripts/provision-docker.sh, function by function (sourcing it runs nothing), on fixture apt
configurations under tmp and with stub apt-get/dpkg commands: the Debian 13 source it adds comes from
the machine's own Debian source (same URIs, same keyring), and transient index or download errors,
including those of the arm64/s390x foreign-architecture steps, are retried rather than fatal.
Nothing here touches the machine's apt, dpkg or Docker."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "provision-docker.sh"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

DEBIAN_12_DEFAULT = f"""\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: {KEYRING}

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: {KEYRING}
"""


def run_functions(apt_etc: Path, commands: str, *, path: str | None = None, codename: str = "bookworm") -> subprocess.CompletedProcess[str]:
    program = (
        f"source {SCRIPT}\n"
        f"APT_ETC={apt_etc}; HOST_ID=debian; HOST_CODENAME={codename}; SUDO=; APT_PAUSE_SECONDS=0; APT_ATTEMPTS=3\n"
        f"{commands}\n"
    )
    env = {"PATH": f"{path}:/usr/bin:/bin" if path else "/usr/bin:/bin", "BAKEGEN_STATE_DIR": str(apt_etc.parent / "state")}
    return subprocess.run(["bash", "-c", program], capture_output=True, text=True, env=env, timeout=60)


def apt_etc_with(tmp_path: Path, files: dict[str, str]) -> Path:
    etc = tmp_path / "etc-apt"
    (etc / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (etc / name).write_text(text)
    return etc


def derived(tmp_path: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_functions(apt_etc_with(tmp_path, files), "derived_debian_source trixie")


def test_debian_12_default_sources_give_trixie_on_the_same_archive_and_keyring(tmp_path: Path) -> None:
    result = derived(tmp_path, {"sources.list.d/debian.sources": DEBIAN_12_DEFAULT})
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: {KEYRING}\n")


def test_a_local_mirror_in_sources_list_is_kept(tmp_path: Path) -> None:
    sources = (
        "# the site mirror\n"
        f"deb [arch=amd64 signed-by={KEYRING}] http://mirror.internal/debian bookworm main contrib\n"
        "deb-src http://mirror.internal/debian bookworm main\n"
        "deb http://mirror.internal/debian-security bookworm-security main\n"
    )
    result = derived(tmp_path, {"sources.list": sources})
    assert result.returncode == 0, result.stderr
    assert "URIs: http://mirror.internal/debian\n" in result.stdout
    assert f"Signed-By: {KEYRING}\n" in result.stdout
    assert "deb.debian.org" not in result.stdout


def test_no_keyring_named_means_no_signed_by(tmp_path: Path) -> None:
    result = derived(tmp_path, {"sources.list": "deb http://mirror.internal/debian bookworm main\n"})
    assert result.returncode == 0, result.stderr
    assert "URIs: http://mirror.internal/debian\n" in result.stdout and "Signed-By" not in result.stdout


def test_third_party_disabled_and_own_sources_are_ignored(tmp_path: Path) -> None:
    files = {
        "sources.list.d/debian.sources": DEBIAN_12_DEFAULT.replace("deb.debian.org", "mirror.internal"),
        # Third-party repositories that reuse Debian suite names, signed with their own keys.
        "sources.list.d/docker.list": "deb [signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.com/linux/debian bookworm stable\n",
        "sources.list.d/vendor.sources": "Types: deb\nURIs: https://vendor.example/debian\nSuites: bookworm\nComponents: main\nSigned-By: /etc/apt/keyrings/vendor.gpg\n",
        "sources.list.d/old.sources": f"Types: deb\nURIs: http://old.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\nSigned-By: {KEYRING}\n",
        # What this script wrote earlier must never feed itself.
        "sources.list.d/bakegen-trixie.sources": f"Types: deb\nURIs: http://stale.example/debian\nSuites: trixie\nComponents: main\nSigned-By: {KEYRING}\n",
    }
    result = derived(tmp_path, files)
    assert result.returncode == 0, result.stderr
    [uris] = [line for line in result.stdout.splitlines() if line.startswith("URIs:")]
    assert uris == "URIs: http://mirror.internal/debian"


def test_a_machine_without_a_debian_source_gets_none(tmp_path: Path) -> None:
    result = derived(tmp_path, {"sources.list": "deb http://archive.ubuntu.com/ubuntu noble main\n"})
    assert result.returncode == 1 and result.stdout == ""


def test_the_base_image_uses_every_suite_of_the_machine_archive(tmp_path: Path) -> None:
    etc = apt_etc_with(tmp_path, {"sources.list.d/debian.sources": DEBIAN_12_DEFAULT})
    result = run_functions(etc, "debian_entries_for_release bookworm")
    assert result.stdout.splitlines() == [
        f"deb [signed-by={KEYRING}] http://deb.debian.org/debian bookworm main",
        f"deb [signed-by={KEYRING}] http://deb.debian.org/debian bookworm-updates main",
        f"deb [signed-by={KEYRING}] http://deb.debian.org/debian-security bookworm-security main",
    ]


def stub(directory: Path, name: str, body: str) -> None:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


# apt-get: `update` fails once for one suite (a mirror mid-sync), then works; `download` fails once
# per package, then writes the .deb. Every call is logged.
FLAKY_APT_GET = """\
log=LOG_FILE
echo "$*" >> "$log"
count=$(grep -c -- "^$1" "$log")
case $1 in
  update)
    if [ "$count" -eq 1 ]; then echo "E: Failed to fetch http://deb.debian.org/debian/dists/bookworm-updates/InRelease  Hash Sum mismatch"; exit 100; fi ;;
  download)
    package=${@: -1}
    if [ "$(grep -c -- "$package" "$log")" -eq 1 ]; then echo "E: Failed to fetch $package: 503"; exit 100; fi
    touch "busybox-static_1.35_${package#busybox-static:}.deb" ;;
esac
"""


def test_a_transient_index_error_for_one_suite_is_retried(tmp_path: Path) -> None:
    bin_dir, log = tmp_path / "bin", tmp_path / "apt.log"
    stub(bin_dir, "apt-get", FLAKY_APT_GET.replace("LOG_FILE", str(log)))
    etc = apt_etc_with(tmp_path, {"sources.list.d/debian.sources": DEBIAN_12_DEFAULT})
    result = run_functions(etc, 'apt_update; echo "updated=$apt_updated"', path=str(bin_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "updated=1"
    assert log.read_text().count("update") == 2
    assert "attempt 1 of 3" in result.stderr and "bookworm-updates" in result.stderr


@pytest.mark.parametrize("foreign_already", [False, True])
def test_foreign_architecture_steps_are_retried(tmp_path: Path, foreign_already: bool) -> None:
    bin_dir, log, dpkg_log = tmp_path / "bin", tmp_path / "apt.log", tmp_path / "dpkg.log"
    stub(bin_dir, "apt-get", FLAKY_APT_GET.replace("LOG_FILE", str(log)))
    listed = "echo arm64; echo s390x" if foreign_already else "cat /dev/null"
    stub(bin_dir, "dpkg", f'echo "$*" >> {dpkg_log}\ncase $1 in --print-foreign-architectures) {listed} ;; esac')
    etc = apt_etc_with(tmp_path, {"sources.list.d/debian.sources": DEBIAN_12_DEFAULT})
    result = run_functions(etc, "apt_updated=1; fetch_busybox_debs arm64 s390x", path=str(bin_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    debs = sorted(path.name for path in (tmp_path / "state" / "debs").iterdir())
    assert debs == ["busybox-static_1.35_arm64.deb", "busybox-static_1.35_s390x.deb"]
    calls = log.read_text().splitlines()
    assert sum(call.startswith("download") for call in calls) == 4  # each failed once, then worked
    added = [line for line in dpkg_log.read_text().splitlines() if line.startswith("--add-architecture")]
    if foreign_already:
        assert added == [] and not any(call.startswith("update") for call in calls)  # nothing new: no update
    else:
        assert added == ["--add-architecture arm64", "--add-architecture s390x"]
        assert sum(call.startswith("update") for call in calls) == 2  # the new indexes: failed once, retried


def test_sourcing_runs_nothing(tmp_path: Path) -> None:
    result = run_functions(apt_etc_with(tmp_path, {}), "echo sourced")
    assert result.returncode == 0 and result.stdout == "sourced\n" and "[provision]" not in result.stderr
