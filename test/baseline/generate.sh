#!/usr/bin/env bash
# Regenerates translate/baselines/{x86_64,aarch64}.json from measurements of
# real programs (`make baselines`). Needs strace, jq, cargo with Debian's
# librust-tokio-dev, qemu-user-static, scmp_sys_resolver (package seccomp) and
# the arm64 packages named below (fetched with apt-get download, which needs
# `dpkg --add-architecture arm64 && apt-get update` once).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
m="$top/test/baseline/measure.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

CGO_ENABLED=0 go build -o "$work/goagent" "$top/test/agents/goagent"
GOARCH=arm64 CGO_ENABLED=0 go build -o "$work/goagent-arm64" "$top/test/agents/goagent"
(cd "$top/test/agents/tokio-agent" && cargo build --release -q)
tokio="$top/test/agents/tokio-agent/target/release/tokio-agent"
tokiover=$(sed -n 's/^version = "\(.*\)"/\1/p' /usr/share/cargo/registry/tokio-*/Cargo.toml | head -1)

(cd "$work" && apt-get download -q libc6:arm64 coreutils:arm64 busybox-static:arm64 >/dev/null)
mkdir "$work/arm64"
for d in "$work"/*.deb; do dpkg -x "$d" "$work/arm64"; done
glibc=$(dpkg-query -W -f='${Version}' libc6:amd64 2>/dev/null || dpkg-query -W -f='${Version}' libc6)
gover=$(go env GOVERSION)

runs() { # N LABEL -- CMD...: N measurements of one program
	local n=$1; shift
	for _ in $(seq "$n"); do "$m" "$@"; done
}
{
	runs 3 "/usr/bin/true (coreutils, glibc $glibc, dynamic)" -- /usr/bin/true
	runs 3 "goagent (empty main, $gover, static)" -- "$work/goagent"
} | jq -s . >"$work/start-x86_64.json"
runs 3 "tokio-agent --minimal (tokio $tokiover, rt-multi-thread+signal, glibc $glibc)" -- "$tokio" --minimal |
	jq -s . >"$work/tokio-x86_64.json"
{
	runs 3 --qemu-aarch64 "$work/arm64" "/usr/bin/true (coreutils arm64, glibc $glibc, dynamic)" -- "$work/arm64/bin/true"
	runs 3 --qemu-aarch64 "$work/arm64" "busybox-static true (arm64)" -- "$work/arm64/bin/busybox" true
	runs 3 --qemu-aarch64 "$work/arm64" "goagent (empty main, $gover, static, arm64)" -- "$work/goagent-arm64"
} | jq -s . >"$work/start-aarch64.json"

date=$(date -u +%Y-%m-%d)
for arch in x86_64 aarch64; do
	tok="$work/tokio-$arch.json"
	[ -f "$tok" ] || echo '[]' >"$tok"
	jq -n --arg arch "$arch" --arg date "$date" \
		--slurpfile start "$work/start-$arch.json" --slurpfile tokio "$tok" '{
		arch: $arch,
		generated_by: "test/baseline/generate.sh (make baselines); do not edit by hand",
		measured: $date,
		baselines: {
			start: {
				description: "what a program needs from execve to main and from main to exit: the dynamic loader, glibc start-up, the Go runtime",
				measurements: ($start[0] | unique_by(.program, .syscalls))
			},
			tokio: {
				description: "what a multi-threaded tokio runtime needs (worker and blocking pools, timer, signal driver, shutdown), on top of start",
				measurements: ($tokio[0] | unique_by(.program, .syscalls))
			}
		}
	}' >"$top/translate/baselines/$arch.json"
done
echo "wrote $top/translate/baselines/x86_64.json and aarch64.json"
