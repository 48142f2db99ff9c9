#!/usr/bin/env bash
# Fetches what the VM matrix boots (make vm-kernel): Debian's current kernel
# for ARCH (amd64 or arm64) as DIR/vmlinuz and, for a foreign ARCH, the
# guest's static busybox and runc (whose libraries the arm64 libseccomp-dev
# of .ci/setup installs). The packages come from this host's apt sources
# (arm64 needs `dpkg --add-architecture arm64`, which .ci/setup does), or,
# with SUITE (bookworm-backports), from that suite of deb.debian.org through
# a private apt state in a temporary directory: the host's sources are not
# touched.
# usage: fetch.sh ARCH DIR [SUITE]
set -euo pipefail
arch=$1 dir=$(realpath -m "$2") suite=${3:-}
mkdir -p "$dir"
work=$(mktemp -d)
chmod 0755 "$work" # apt-get download drops to the _apt user
trap 'rm -rf "$work"' EXIT
cd "$work"
apt=()
if [ -n "$suite" ]; then
	mkdir -p lists/partial cache/archives/partial
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" >sources.list
	apt=(-o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/nonexistent
		-o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" -o APT::Architectures::="$arch")
	apt-get "${apt[@]}" update -qq
fi
lookup() { apt-cache "${apt[@]}" depends "linux-image-$arch:$arch" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
pkg=$(lookup)
if [ -z "$pkg" ]; then
	apt-get "${apt[@]}" update -qq
	pkg=$(lookup)
fi
[ -n "$pkg" ] || { echo "fetch.sh: no linux-image-$arch:$arch in the apt sources" >&2; exit 1; }
pkgs=("${pkg%:*}:$arch")
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
	pkgs+=("busybox-static:$arch" "runc:$arch")
fi
# apt-get download warns that it runs unsandboxed as root; nothing else.
apt-get "${apt[@]}" download -q "${pkgs[@]}" 2>&1 | grep -v unsandboxed || true
dpkg-deb --fsys-tarfile linux-image-*.deb | tar -xO --wildcards './boot/vmlinuz-*' >"$dir/vmlinuz.tmp"
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
	dpkg-deb --fsys-tarfile busybox-static_*.deb | tar -xO ./bin/busybox >"$dir/busybox"
	dpkg-deb --fsys-tarfile runc_*.deb | tar -xO ./usr/sbin/runc >"$dir/runc"
	chmod 0755 "$dir/busybox" "$dir/runc"
fi
if [ -n "$suite" ]; then
	# The netfilter modules (nf_tables and what the port policy uses) and
	# crc32c for libcrc32c, for a guest that loads them itself:
	# uncompressed, since busybox's insmod hands the file to init_module.
	mkdir -p m
	dpkg-deb --fsys-tarfile linux-image-*.deb | tar -x -C m --wildcards './lib/modules/*/kernel/net/netfilter/*' \
		'./lib/modules/*/kernel/net/ipv4/netfilter/*' './lib/modules/*/kernel/net/ipv6/netfilter/*' \
		'./lib/modules/*/kernel/lib/libcrc32c.ko*' './lib/modules/*/kernel/crypto/crc32c_generic.ko*'
	find m -name '*.ko.xz' -exec xz -d {} +
	rm -rf "$dir/modules"
	mkdir -p "$dir/modules"
	find m -name '*.ko' -exec mv {} "$dir/modules/" \;
fi
mv "$dir/vmlinuz.tmp" "$dir/vmlinuz"
