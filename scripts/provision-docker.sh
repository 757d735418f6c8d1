#!/usr/bin/env bash
# Provision a real Docker engine, buildx, a local registry on 127.0.0.1:5000, arm64 and s390x
# emulation, and the demo's Debian base image on Debian 12 without systemd. Idempotent: every
# step checks first, so a re-run on a provisioned machine is a fast no-op. Follows the recipe
# verified on this machine (shared/ENVIRONMENT.md); pulls no image.
#
# Package archives: this script names no archive host. Everything it fetches comes from the
# Debian archive the machine itself is configured with (/etc/apt/sources.list{,.d}), so a machine
# behind a local mirror keeps using its mirror. On a machine with no Debian source (e.g. an
# Ubuntu CI runner), set BAKEGEN_DEBIAN_MIRROR to a Debian archive URL: the demo's base image
# and its busybox packages then come from there, through a private apt configuration that
# leaves the machine's own apt sources alone.
set -euo pipefail

STATE_DIR=${BAKEGEN_STATE_DIR:-/var/tmp/bakegen}
REGISTRY_ADDR=${BAKEGEN_REGISTRY_ADDR:-127.0.0.1:5000}
DEBIAN_MIRROR_OVERRIDE=${BAKEGEN_DEBIAN_MIRROR:-}
APT_ATTEMPTS=${BAKEGEN_APT_ATTEMPTS:-5}
APT_PAUSE_SECONDS=${BAKEGEN_APT_PAUSE_SECONDS:-5}

# The demo Dockerfiles build FROM this image (examples/demo/.devops); the suite names its release.
DEMO_BASE_IMAGE=bakegen-demo/debian:bookworm
DEMO_BASE_SUITE=bookworm
DEMO_BASE_TAR=$STATE_DIR/debian-$DEMO_BASE_SUITE-minbase.tar
# The demo's busybox root file systems (examples/demo/prepare-rootfs.sh), one per arch.
BUSYBOX_ARCHES=(amd64 arm64 s390x)
FOREIGN_ARCHES=(arm64 s390x)
QEMU_BINFMTS=(qemu-aarch64 qemu-s390x)
# The suite docker-buildx comes from on Debian 12, which has no package of it.
BUILDX_SUITE=trixie
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
OUR_APT_FILE_PREFIX=bakegen-
APT_ETC=/etc/apt

log() { printf '[provision] %s\n' "$*"; }
warn() { printf '[provision] warning: %s\n' "$*" >&2; }
die() { printf '[provision] error: %s\n' "$*" >&2; exit 1; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# shellcheck source=/dev/null
HOST_ID=$( (. /etc/os-release && echo "${ID:-}") 2>/dev/null || true)
# shellcheck source=/dev/null
HOST_CODENAME=$( (. /etc/os-release && echo "${VERSION_CODENAME:-}") 2>/dev/null || true)

# --- apt, with retries ----------------------------------------------------------------------
# A mirror that is syncing answers one suite's index with a wrong size or hash for a while;
# apt-get update then fails for that suite only. Retry with a growing pause, and if it still
# fails carry on with the indexes apt has: an install that really needs the missing index fails
# on its own, with apt's message.
apt_updated=0
apt_update() {
  local attempt output
  for attempt in $(seq 1 "$APT_ATTEMPTS"); do
    if output=$($SUDO apt-get update -qq 2>&1) && ! grep -qE '^(W|E): (Failed to fetch|Some index files failed)' <<<"$output"; then
      apt_updated=1
      return 0
    fi
    warn "apt-get update, attempt $attempt of $APT_ATTEMPTS: $(grep -E '^(W|E):' <<<"$output" | head -n 3 | tr '\n' ' ')"
    [ "$attempt" -eq "$APT_ATTEMPTS" ] || sleep $((attempt * APT_PAUSE_SECONDS))
  done
  warn "apt-get update still reports errors after $APT_ATTEMPTS attempts; continuing with the indexes it has"
  apt_updated=1
}

# Runs "$@" up to APT_ATTEMPTS times (a package download can hit the same mirror sync).
with_retries() {
  local attempt
  for attempt in $(seq 1 "$APT_ATTEMPTS"); do
    "$@" && return 0
    [ "$attempt" -eq "$APT_ATTEMPTS" ] && return 1
    warn "'$*' failed (attempt $attempt of $APT_ATTEMPTS); retrying"
    sleep $((attempt * APT_PAUSE_SECONDS))
  done
}

apt_install() {
  [ "$apt_updated" -eq 1 ] || apt_update
  DEBIAN_FRONTEND=noninteractive with_retries $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- the machine's own Debian archive ---------------------------------------------------------
# Every enabled binary ("deb") source of the machine, one line each: URI TAB SUITE TAB
# COMPONENTS TAB SIGNED-BY (empty when the source names no keyring file). Reads one-line
# sources.list files and deb822 .sources files; leaves out the files this script writes.
configured_apt_sources() {
  local files=() file
  for file in "$APT_ETC"/sources.list "$APT_ETC"/sources.list.d/*.list "$APT_ETC"/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    case "$(basename "$file")" in "$OUR_APT_FILE_PREFIX"*) continue ;; esac
    files+=("$file")
  done
  [ "${#files[@]}" -gt 0 ] || return 0
  awk '
    function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
    function emit(uri_list, suite_list, components, signed_by,    u, s, nu, ns, i, j) {
      nu = split(uri_list, u, /[ \t]+/); ns = split(suite_list, s, /[ \t]+/)
      for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
        if (u[i] != "" && s[j] != "") print u[i] "\t" s[j] "\t" components "\t" signed_by
    }
    function flush_stanza() {
      if ((" " types " ") ~ / deb / && tolower(enabled) != "no") emit(uris, suites, components, signed_by)
      types = uris = suites = components = signed_by = field = ""; enabled = "yes"
    }
    FNR == 1 { flush_stanza(); deb822 = (FILENAME ~ /\.sources$/) }
    /^[ \t]*#/ { next }
    deb822 && /^[ \t]*$/ { flush_stanza(); next }
    deb822 && /^[ \t]/ {
      # A continuation line: more values, except in Signed-By, where it is an inline key (no file to name).
      if (field == "uris") uris = uris " " trim($0)
      else if (field == "suites") suites = suites " " trim($0)
      else if (field == "components") components = components " " trim($0)
      next
    }
    deb822 {
      colon = index($0, ":"); if (colon == 0) next
      field = tolower(trim(substr($0, 1, colon - 1))); value = trim(substr($0, colon + 1))
      if (field == "types") types = value
      else if (field == "uris") uris = value
      else if (field == "suites") suites = value
      else if (field == "components") components = value
      else if (field == "enabled") enabled = value
      else if (field == "signed-by") signed_by = (value ~ /^\//) ? value : ""
      next
    }
    !deb822 && $1 == "deb" {
      line = trim(substr($0, index($0, "deb") + 3)); options = ""
      if (substr(line, 1, 1) == "[") {
        close_at = index(line, "]"); options = substr(line, 2, close_at - 2); line = trim(substr(line, close_at + 1))
      }
      key_file = ""; n = split(options, opt, /[ \t]+/)
      for (i = 1; i <= n; i++) if (tolower(opt[i]) ~ /^signed-by=\//) key_file = substr(opt[i], 11)
      n = split(line, word, /[ \t]+/); rest = ""
      for (i = 3; i <= n; i++) rest = rest (i > 3 ? " " : "") word[i]
      emit(word[1], word[2], rest, key_file)
    }
    END { flush_stanza() }
  ' "${files[@]}"
}

# The machine's Debian entries for its own release: suites CODENAME, CODENAME-updates and
# CODENAME-security (or the stable/testing/unstable aliases), with component main, and a Debian
# archive keyring when they name one (a third-party repository that reuses a Debian suite name
# signs with its own key). Same columns as configured_apt_sources.
machine_debian_sources() {
  [ "$HOST_ID" = debian ] || return 0
  configured_apt_sources | awk -F '\t' -v codename="$HOST_CODENAME" '
    {
      base = $2; sub(/-(updates|security)$/, "", base)
      if (base != codename && base != "stable" && base != "testing" && base != "unstable" && base != "sid") next
      if ((" " $3 " ") !~ / main /) next
      if ($4 != "" && $4 !~ /\/debian-archive-[^\/]*$/) next
      if (seen[$1 "\t" $2]++) next
      print
    }'
}

# The machine's Debian entries with their suites renamed to release TARGET (bookworm-security
# becomes TARGET-security, and so on), as one-line "deb [signed-by=...] URI SUITE COMPONENTS".
# Only the main suite when the second argument is "main-only".
debian_entries_for_release() {
  local target=$1 which=${2:-all}
  machine_debian_sources | awk -F '\t' -v target="$target" -v which="$which" '
    {
      suffix = ""; if (match($2, /-(updates|security)$/)) suffix = substr($2, RSTART)
      if (which == "main-only" && suffix != "") next
      options = ($4 != "") ? "[signed-by=" $4 "] " : ""
      print "deb " options $1 " " target suffix " " $3
    }'
}

# A deb822 source for suite SUITE on the machine's own Debian archive: the same URIs and
# Signed-By keyring as the machine's main Debian suite.
derived_debian_source() {
  local suite=$1 uris signed_by
  uris=$(machine_debian_sources | awk -F '\t' '$2 !~ /-(updates|security)$/ { print $1 }' | awk '!seen[$0]++' | paste -sd ' ' -)
  signed_by=$(machine_debian_sources | awk -F '\t' '$2 !~ /-(updates|security)$/ && $4 != "" { print $4; exit }')
  [ -n "$uris" ] || return 1
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n' "$uris" "$suite"
  [ -z "$signed_by" ] || printf 'Signed-By: %s\n' "$signed_by"
}

# Installs file TARGET with CONTENT unless it already has exactly that content; returns 1 when unchanged.
install_file_if_changed() {
  local target=$1 content=$2 staged
  if [ -f "$target" ] && [ "$(cat "$target")" = "$content" ]; then return 1; fi
  staged=$(mktemp)
  printf '%s\n' "$content" >"$staged"
  $SUDO install -m 0644 "$staged" "$target"
  rm -f "$staged"
}

# --- a private apt for Debian packages on a machine without a Debian source ---------------------
# Only downloads (no install), into STATE_DIR, from BAKEGEN_DEBIAN_MIRROR; the machine's apt
# configuration, architectures and package lists stay as they are.
PRIVATE_APT=$STATE_DIR/apt
private_apt() {
  local options=(
    -o Dir::Etc::SourceList="$PRIVATE_APT/sources.list" -o Dir::Etc::SourceParts="$PRIVATE_APT/empty"
    -o Dir::Etc::Preferences="$PRIVATE_APT/empty/preferences" -o Dir::Etc::PreferencesParts="$PRIVATE_APT/empty"
    -o Dir::State::Lists="$PRIVATE_APT/lists" -o Dir::Cache="$PRIVATE_APT/cache"
    -o APT::Sandbox::User=root -o APT::Architecture="$(dpkg --print-architecture)"
  ) arch
  for arch in "${BUSYBOX_ARCHES[@]}"; do options+=(-o "APT::Architectures::=$arch"); done
  apt-get -qq "${options[@]}" "$@"
}
private_apt_update() {
  [ -n "$DEBIAN_MIRROR_OVERRIDE" ] || die "this machine has no Debian source; set BAKEGEN_DEBIAN_MIRROR to a Debian archive URL"
  [ -f "$DEBIAN_KEYRING" ] || apt_install debian-archive-keyring
  mkdir -p "$PRIVATE_APT/lists/partial" "$PRIVATE_APT/cache/archives/partial" "$PRIVATE_APT/empty"
  printf 'deb [signed-by=%s] %s %s main\n' "$DEBIAN_KEYRING" "$DEBIAN_MIRROR_OVERRIDE" "$DEMO_BASE_SUITE" >"$PRIVATE_APT/sources.list"
  with_retries private_apt update
}

# Downloads busybox-static for each arch given into STATE_DIR/debs. On Debian: from the machine's
# own archive, after adding the foreign architectures (arm64, s390x), whose new indexes go through
# apt_update's retries like any other; each download is retried too. Elsewhere: from
# BAKEGEN_DEBIAN_MIRROR through the private apt.
fetch_busybox_debs() {
  local arch foreign
  mkdir -p "$STATE_DIR/debs"
  if [ "$HOST_ID" = debian ]; then
    # Read the list first: `dpkg ... | grep -q` under pipefail fails when grep exits before dpkg has written
    # everything (SIGPIPE), which would add an architecture that is already there.
    foreign=$(dpkg --print-foreign-architectures)
    for arch in "${FOREIGN_ARCHES[@]}"; do
      if ! grep -qx "$arch" <<<"$foreign"; then
        log "adding architecture $arch"
        $SUDO dpkg --add-architecture "$arch"
        apt_updated=0
      fi
    done
    [ "$apt_updated" -eq 1 ] || apt_update
    for arch in "$@"; do
      log "downloading busybox-static:$arch"
      (cd "$STATE_DIR/debs" && with_retries apt-get download -qq -o APT::Sandbox::User=root "busybox-static:$arch")
    done
  else
    private_apt_update
    for arch in "$@"; do
      log "downloading busybox-static:$arch from BAKEGEN_DEBIAN_MIRROR"
      (cd "$STATE_DIR/debs" && with_retries private_apt download "busybox-static:$arch")
    done
  fi
}

main() {
  mkdir -p "$STATE_DIR"

  # --- engine ---------------------------------------------------------------------------------
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing the docker.io package"
    apt_install docker.io
  fi

  # --- buildx ---------------------------------------------------------------------------------
  # (GitHub's Ubuntu runners already have buildx; Debian 12 has no package of it, Debian 13 has.)
  if ! docker buildx version >/dev/null 2>&1 && [ ! -x /usr/libexec/docker/cli-plugins/docker-buildx ]; then
    [ "$apt_updated" -eq 1 ] || apt_update
    if [ "$HOST_ID" = debian ] && ! apt-cache policy docker-buildx 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      log "adding a $BUILDX_SUITE source on this machine's Debian archive for docker-buildx"
      local source
      source=$(derived_debian_source "$BUILDX_SUITE") || die "no Debian archive configured on this machine to take docker-buildx from"
      install_file_if_changed "/etc/apt/sources.list.d/${OUR_APT_FILE_PREFIX}$BUILDX_SUITE.sources" "$source" || true
      # A low pin, so nothing else is upgraded from that suite.
      install_file_if_changed "/etc/apt/preferences.d/${OUR_APT_FILE_PREFIX}$BUILDX_SUITE" \
        "$(printf 'Package: *\nPin: release n=%s\nPin-Priority: 100' "$BUILDX_SUITE")" || true
      apt_update
    fi
    log "installing docker-buildx"
    # --no-install-recommends matters: trixie's docker-cli would remove docker.io.
    apt_install docker-buildx
  fi
  # A source this script added earlier follows the machine's archive if that changed (e.g. a
  # mirror configured since); one written by an older version of this script is replaced too.
  local buildx_source=/etc/apt/sources.list.d/${OUR_APT_FILE_PREFIX}$BUILDX_SUITE.sources derived
  if [ -f "$buildx_source" ] && derived=$(derived_debian_source "$BUILDX_SUITE") && install_file_if_changed "$buildx_source" "$derived"; then
    log "updated $buildx_source to this machine's Debian archive"
    apt_updated=0
  fi

  # --- registry and qemu ----------------------------------------------------------------------
  command -v docker-registry >/dev/null 2>&1 || { log "installing docker-registry"; apt_install docker-registry; }
  if [ ! -x /usr/bin/qemu-aarch64-static ] || [ ! -x /usr/bin/qemu-s390x-static ]; then
    log "installing qemu-user-static"
    apt_install qemu-user-static binfmt-support
  fi
  command -v busybox >/dev/null 2>&1 || apt_install busybox-static
  command -v curl >/dev/null 2>&1 || apt_install curl

  # --- busybox for every demo arch: the demo images' root file systems (examples/demo) -------
  mkdir -p "$STATE_DIR/debs"
  local arch missing=()
  for arch in "${BUSYBOX_ARCHES[@]}"; do
    ls "$STATE_DIR"/debs/busybox-static_*_"$arch".deb >/dev/null 2>&1 || missing+=("$arch")
  done
  [ "${#missing[@]}" -eq 0 ] || fetch_busybox_debs "${missing[@]}"

  # --- start dockerd --------------------------------------------------------------------------
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    nohup dockerd >"$STATE_DIR/dockerd.log" 2>&1 &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { log "dockerd did not come up"; tail -20 "$STATE_DIR/dockerd.log"; exit 1; }
  fi
  docker buildx version >/dev/null

  # --- arm64 and s390x emulation --------------------------------------------------------------
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    $SUDO mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
  fi
  local binfmt emulated=()
  for binfmt in "${QEMU_BINFMTS[@]}"; do
    if [ ! -e "/proc/sys/fs/binfmt_misc/$binfmt" ]; then
      $SUDO update-binfmts --enable "$binfmt" >/dev/null 2>&1 || true
    fi
    if [ -e "/proc/sys/fs/binfmt_misc/$binfmt" ]; then emulated+=("${binfmt#qemu-}"); else warn "$binfmt emulation: NOT available"; fi
  done
  log "emulation: ${emulated[*]:-none}"

  # --- local registry -------------------------------------------------------------------------
  if ! curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then
    log "starting registry on $REGISTRY_ADDR"
    mkdir -p "$STATE_DIR/registry"
    cat >"$STATE_DIR/registry.yml" <<CFG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE_DIR/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
CFG
    nohup docker-registry serve "$STATE_DIR/registry.yml" >"$STATE_DIR/registry.log" 2>&1 &
    for _ in $(seq 1 30); do curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1 && break; sleep 0.5; done
    curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null || { log "registry did not come up"; cat "$STATE_DIR/registry.log"; exit 1; }
  fi

  # --- the demo's Debian base image -----------------------------------------------------------
  # A minimal Debian made with mmdebstrap from the machine's own Debian archive (no registry
  # needed); the tarball is kept in STATE_DIR so a lost image is re-imported without a download.
  if ! docker image inspect "$DEMO_BASE_IMAGE" >/dev/null 2>&1; then
    if [ ! -s "$DEMO_BASE_TAR" ]; then
      build_demo_base_tar
    fi
    log "importing $DEMO_BASE_IMAGE"
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' \
      --message "mmdebstrap --variant=minbase $DEMO_BASE_SUITE (scripts/provision-docker.sh)" \
      "$DEMO_BASE_TAR" "$DEMO_BASE_IMAGE" >/dev/null
  fi

  log "ready: $(docker version --format 'engine {{.Server.Version}}'), $(docker buildx version | cut -d' ' -f1-2), registry $REGISTRY_ADDR, base $DEMO_BASE_IMAGE"
}

build_demo_base_tar() {
  local mirrors=() keyring_args=() line
  if [ -n "$DEBIAN_MIRROR_OVERRIDE" ]; then
    [ -f "$DEBIAN_KEYRING" ] || apt_install debian-archive-keyring
    mirrors=("deb [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR_OVERRIDE $DEMO_BASE_SUITE main")
    keyring_args=(--keyring="$DEBIAN_KEYRING")
  else
    while IFS= read -r line; do mirrors+=("$line"); done < <(debian_entries_for_release "$DEMO_BASE_SUITE")
    [ "${#mirrors[@]}" -gt 0 ] ||
      die "no Debian archive configured on this machine for $DEMO_BASE_IMAGE; set BAKEGEN_DEBIAN_MIRROR to a Debian archive URL"
  fi
  command -v mmdebstrap >/dev/null 2>&1 || { log "installing mmdebstrap"; apt_install mmdebstrap; }
  local options=(--quiet --format=tar --variant=minbase) hooks
  # Builds inside the image run apt-get against the same archive: over https they need CA certificates.
  case "${mirrors[*]}" in *https://*) options+=(--include=ca-certificates) ;; esac
  # Merged /usr the way Debian's own images have it, without the usrmerge package (which pulls in
  # perl: 50 MB more in every demo image).
  for hooks in /usr/share/mmdebstrap/hooks/maybe-merged-usr /usr/share/mmdebstrap/hooks/merged-usr; do
    if [ -d "$hooks" ]; then options+=(--hook-dir="$hooks"); break; fi
  done
  log "building $DEMO_BASE_SUITE minbase with mmdebstrap from: ${mirrors[*]}"
  rm -f "$DEMO_BASE_TAR.tmp"
  if ! with_retries mmdebstrap "${options[@]}" ${keyring_args[@]+"${keyring_args[@]}"} \
    "$DEMO_BASE_SUITE" "$DEMO_BASE_TAR.tmp" "${mirrors[@]}" >"$STATE_DIR/mmdebstrap.log" 2>&1; then
    tail -n 30 "$STATE_DIR/mmdebstrap.log" >&2
    die "mmdebstrap failed (log: $STATE_DIR/mmdebstrap.log)"
  fi
  mv "$DEMO_BASE_TAR.tmp" "$DEMO_BASE_TAR"
}

# Sourcing this file (e.g. to try one function) defines the functions and runs nothing.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
