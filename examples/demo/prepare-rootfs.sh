#!/usr/bin/env bash
# Build rootfs/amd64.tar and rootfs/arm64.tar: a static busybox with its applet links, from
# Debian's busybox-static packages. The demo Dockerfiles start FROM scratch and ADD the
# tar for their TARGETARCH, so they build with no registry at all. Idempotent; the tars
# are reproducible (sorted, mtime 0, owner root).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
debs=${BAKEGEN_STATE_DIR:-/var/tmp/bakegen}/debs
mkdir -p "$here/rootfs" "$debs"
for arch in amd64 arm64; do
  [ -s "$here/rootfs/$arch.tar" ] && continue
  deb=$(ls "$debs"/busybox-static_*_"$arch".deb 2>/dev/null | head -n1 || true)
  if [ -z "$deb" ]; then
    (cd "$debs" && apt-get download -qq "busybox-static:$arch")  # needs: dpkg --add-architecture arm64
    deb=$(ls "$debs"/busybox-static_*_"$arch".deb | head -n1)
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  dpkg -x "$deb" "$work/pkg"
  mkdir -p "$work/root/bin" "$work/root/tmp" "$work/root/etc"
  chmod 1777 "$work/root/tmp"
  cp "$work/pkg/bin/busybox" "$work/root/bin/busybox"
  # The applet list is the same for both arches (one package version); ask the native one.
  list_from=$(command -v busybox || echo "$work/pkg/bin/busybox")
  for applet in $("$list_from" --list); do
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
