#!/bin/sh
# Installs clawos-security's runtime side on a Kubernetes node: the static
# programs (clawos-runc, clawos-hook, clawos-init), the runtime wrapper's
# configuration (kept if present) and the trusted whitelists, each file
# written to a temporary name and renamed, so that containerd never runs a
# half-copied wrapper. It then prints the containerd snippet to merge; it
# does not edit containerd's config or restart it (an operator's decision).
# The installer DaemonSet (deploy/installer.yaml) runs it with --host /host;
# by hand on a node: deploy/install-node.sh --from . --whitelists DIR
#
# usage: install-node.sh [--host DIR] [--prefix DIR] [--from DIR] [--whitelists DIR]
#   --host        the node's root (default /)
#   --prefix      where the programs go, PREFIX/bin, on the node (default
#                 /usr/local; read-only there on COS, Bottlerocket, Flatcar and
#                 Talos: /opt/clawos, say); the printed snippet names it
#   --from        where bin/ and deploy/ are (default: the script's parent)
#   --whitelists  a directory of NAME.json whitelists to install
set -eu
host=/
prefix=/usr/local
from=$(cd "$(dirname "$0")/.." && pwd)
whitelists=
while [ $# -gt 0 ]; do
	case $1 in
	--host) host=$2; shift 2 ;;
	--prefix) prefix=$2; shift 2 ;;
	--from) from=$2; shift 2 ;;
	--whitelists) whitelists=$2; shift 2 ;;
	*) echo "install-node.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
case $prefix in
/*) ;;
*) echo "install-node.sh: --prefix must be an absolute path, not $prefix" >&2; exit 2 ;;
esac
bin=$host$prefix/bin
etc=$host/etc/clawos

# put SRC DST MODE: copy SRC to DST atomically (same directory, rename).
put() {
	tmp="$2.clawos-tmp.$$"
	cp "$1" "$tmp"
	chmod "$3" "$tmp"
	mv -f "$tmp" "$2"
}

mkdir -p "$bin" "$etc/whitelists"
for p in clawos-init clawos-hook clawos-runc; do
	[ -x "$from/bin/$p" ] || { echo "install-node.sh: $from/bin/$p is missing (make build)" >&2; exit 1; }
	put "$from/bin/$p" "$bin/$p" 0755
done
if [ ! -e "$etc/runtime.json" ]; then
	put "$from/deploy/runtime.json" "$etc/runtime.json" 0644
fi
# Whitelists: regular files inside the source directory only. A
# ConfigMap volume's entries are symlinks into its own ..data directory,
# which stays inside; an entry that leads out of the directory (to
# /etc/shadow, say) or is not a regular file is refused by name and the
# installer fails after installing the others.
refused=
if [ -n "$whitelists" ]; then
	src=$(cd "$whitelists" && pwd -P)
	for f in "$whitelists"/*.json; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		name=$(basename "$f")
		real=$(readlink -f "$f" || true)
		case $real in
		"$src"/*) ;;
		*)
			echo "install-node.sh: refusing whitelist $name: it leads out of $whitelists" >&2
			refused=1
			continue
			;;
		esac
		if [ ! -f "$real" ]; then
			echo "install-node.sh: refusing whitelist $name: not a regular file" >&2
			refused=1
			continue
		fi
		put "$real" "$etc/whitelists/$name" 0644
	done
fi
if [ -n "$refused" ]; then
	echo "install-node.sh: some whitelists were refused (above); the others are installed" >&2
	exit 1
fi
echo "clawos-security installed under $host (programs in $prefix/bin, configuration in /etc/clawos)."
echo "Merge into /etc/containerd/config.toml, restart containerd, then label the node clawos.io/runtime=ready:"
sed "s#/usr/local/bin/clawos-runc#$prefix/bin/clawos-runc#" "$from/deploy/containerd-clawos.toml"
