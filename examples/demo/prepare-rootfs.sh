#!/usr/bin/env bash
# Build rootfs/amd64.tar, rootfs/arm64.tar and rootfs/s390x.tar: a static busybox with its applet
# links, from Debian's busybox-static packages. The demo Dockerfiles start their non-amd64 stages
# (and the tests some of their own) FROM scratch and ADD the tar for their TARGETARCH, so they build
# with no registry at all. Idempotent; the tars are reproducible (sorted, mtime 0, owner root).
# The packages come from scripts/provision-docker.sh's cache (BAKEGEN_STATE_DIR/debs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
debs=${BAKEGEN_STATE_DIR:-/var/tmp/bakegen}/debs
arches=(amd64 arm64 s390x)
mkdir -p "$here/rootfs" "$debs"
for arch in "${arches[@]}"; do
  [ -s "$here/rootfs/$arch.tar" ] && continue
  deb=$(ls "$debs"/busybox-static_*_"$arch".deb 2>/dev/null | head -n1 || true)
  if [ -z "$deb" ]; then
    # Needs `dpkg --add-architecture $arch` (scripts/provision-docker.sh does it).
    (cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root "busybox-static:$arch")
    deb=$(ls "$debs"/busybox-static_*_"$arch".deb | head -n1)
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  dpkg -x "$deb" "$work/pkg"
  mkdir -p "$work/root/bin" "$work/root/tmp" "$work/root/etc"
  chmod 1777 "$work/root/tmp"
  cp "$work/pkg/bin/busybox" "$work/root/bin/busybox"
  # The package's own busybox names its applets (it runs here natively or under QEMU's binfmt);
  # without emulation, the host's busybox of the same Debian release has the same list.
  if ! applets=$("$work/pkg/bin/busybox" --list 2>/dev/null); then
    applets=$(busybox --list)
  fi
  for applet in $applets; do
    [ "$applet" = busybox ] || ln -s busybox "$work/root/bin/$applet"
  done
  printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$work/root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$work/root/etc/group"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/root" -cf "$here/rootfs/$arch.tar.tmp" .
  mv "$here/rootfs/$arch.tar.tmp" "$here/rootfs/$arch.tar"
  rm -rf "$work"
  trap - EXIT
  echo "rootfs/$arch.tar ready"
done

# The amd64 stages of the demo Dockerfiles build FROM this Debian base, which
# scripts/provision-docker.sh makes (mmdebstrap) and imports; no registry has it.
base=bakegen-demo/debian:bookworm
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 && ! docker image inspect "$base" >/dev/null 2>&1; then
  echo "warning: $base is not in the local engine and the demo's amd64 images build FROM it:" \
    "run scripts/provision-docker.sh, or build with --set '*.args.BASE_IMAGE=<a local Debian 12 image>'" >&2
fi
