#!/usr/bin/env bash
# Fetches what the VM matrix boots (make vm-kernel): Debian's current kernel
# for ARCH (amd64 or arm64) as DIR/vmlinuz and, for a foreign ARCH, the
# guest's static busybox and runc (whose libraries the arm64 libseccomp-dev
# of .ci/setup installs). The packages come from this host's apt sources
# (arm64 needs `dpkg --add-architecture arm64`, which .ci/setup does).
# usage: fetch.sh ARCH DIR
set -euo pipefail
arch=$1 dir=$2
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
lookup() { apt-cache depends "linux-image-$arch:$arch" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
pkg=$(lookup)
if [ -z "$pkg" ]; then
	apt-get update -qq
	pkg=$(lookup)
fi
[ -n "$pkg" ] || { echo "fetch.sh: no linux-image-$arch:$arch in the apt sources" >&2; exit 1; }
pkgs=("${pkg%:*}:$arch")
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
	pkgs+=("busybox-static:$arch" "runc:$arch")
fi
# apt-get download warns that it runs unsandboxed as root; nothing else.
apt-get download -q "${pkgs[@]}" 2>&1 | grep -v unsandboxed || true
dpkg-deb --fsys-tarfile linux-image-*.deb | tar -xO --wildcards './boot/vmlinuz-*' >"$dir/vmlinuz.tmp"
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
	dpkg-deb --fsys-tarfile busybox-static_*.deb | tar -xO ./bin/busybox >"$dir/busybox"
	dpkg-deb --fsys-tarfile runc_*.deb | tar -xO ./usr/sbin/runc >"$dir/runc"
	chmod 0755 "$dir/busybox" "$dir/runc"
fi
mv "$dir/vmlinuz.tmp" "$dir/vmlinuz"
