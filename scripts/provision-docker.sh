#!/usr/bin/env bash
# Provision a real Docker engine, buildx, a local registry on 127.0.0.1:5000 and
# arm64 emulation on Debian 12 without systemd. Idempotent: every step checks first.
# Follows the recipe verified on this machine (shared/ENVIRONMENT.md); pulls no image.
set -euo pipefail

STATE_DIR=${BAKEGEN_STATE_DIR:-/var/tmp/bakegen}
REGISTRY_ADDR=${BAKEGEN_REGISTRY_ADDR:-127.0.0.1:5000}
mkdir -p "$STATE_DIR"

log() { printf '[provision] %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- engine ----------------------------------------------------------------
if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io"
  apt_install docker.io
fi

# --- buildx (from Debian 13, pinned low so nothing else upgrades) ----------
# (GitHub's Ubuntu runners already have buildx; Debian 12 has no package of it.)
if ! docker buildx version >/dev/null 2>&1 && [ ! -x /usr/libexec/docker/cli-plugins/docker-buildx ]; then
  log "installing docker-buildx from trixie"
  cat > /tmp/bakegen-trixie.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  $SUDO cp /tmp/bakegen-trixie.sources /etc/apt/sources.list.d/bakegen-trixie.sources
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' > /tmp/bakegen-trixie.pref
  $SUDO cp /tmp/bakegen-trixie.pref /etc/apt/preferences.d/bakegen-trixie
  apt_updated=0
  # --no-install-recommends matters: trixie's docker-cli would remove docker.io.
  apt_install docker-buildx
fi

# --- registry and qemu -----------------------------------------------------
command -v docker-registry >/dev/null 2>&1 || { log "installing docker-registry"; apt_install docker-registry; }
[ -x /usr/bin/qemu-aarch64-static ] || { log "installing qemu-user-static"; apt_install qemu-user-static binfmt-support; }
command -v busybox >/dev/null 2>&1 || apt_install busybox-static
command -v curl >/dev/null 2>&1 || apt_install curl

# --- busybox for both arches: the demo images' root file systems (examples/demo) ---
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
  apt_updated=0
  . /etc/os-release
  if [ "${ID:-}" = ubuntu ]; then
    # Ubuntu serves arm64 from its ports archive: keep the main sources to amd64, add ports.
    for f in /etc/apt/sources.list.d/ubuntu.sources; do
      [ -f "$f" ] && ! grep -q '^Architectures:' "$f" && $SUDO sed -i '/^Types:/a Architectures: amd64' "$f"
    done
    printf 'Types: deb\nURIs: http://ports.ubuntu.com/ubuntu-ports\nSuites: %s %s-updates\nComponents: main universe\nArchitectures: arm64\nSigned-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n' \
      "$VERSION_CODENAME" "$VERSION_CODENAME" > /tmp/bakegen-ports.sources
    $SUDO cp /tmp/bakegen-ports.sources /etc/apt/sources.list.d/bakegen-ports.sources
  fi
fi
mkdir -p "$STATE_DIR/debs"
for arch in amd64 arm64; do
  if ! ls "$STATE_DIR"/debs/busybox-static_*_"$arch".deb >/dev/null 2>&1; then
    if [ "$apt_updated" -eq 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
    log "downloading busybox-static:$arch"
    (cd "$STATE_DIR/debs" && apt-get download -qq "busybox-static:$arch")
  fi
done

# --- start dockerd ---------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  nohup dockerd >"$STATE_DIR/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { log "dockerd did not come up"; tail -20 "$STATE_DIR/dockerd.log"; exit 1; }
fi
docker buildx version >/dev/null

# --- arm64 emulation -------------------------------------------------------
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  $SUDO mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  $SUDO update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || $SUDO update-binfmts --enable >/dev/null 2>&1 || true
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && log "arm64 emulation: on" || log "arm64 emulation: NOT available"

# --- local registry --------------------------------------------------------
if ! curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then
  log "starting registry on $REGISTRY_ADDR"
  mkdir -p "$STATE_DIR/registry"
  cat > "$STATE_DIR/registry.yml" <<CFG
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
log "ready: $(docker version --format 'engine {{.Server.Version}}'), $(docker buildx version | cut -d' ' -f1-2), registry $REGISTRY_ADDR"
