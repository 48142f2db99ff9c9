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

# runtime_baselines measures, as root with runc, what runc's init and
# clawos-init call under the container-level filter, and writes them as the
# internal baselines runtime-runc and clawos-init of the native arch.
runtime_baselines() {
	make -C "$top" bin/clawos-init bin/clawos-probe >/dev/null
	# runc's and libcontainer's inits are Go programs: their runtime may make
	# its own calls at any moment (preemption signals, GC, timers), measured
	# on a program that exercises exactly that.
	CGO_ENABLED=0 go build -o "$work/gostress" "$top/test/agents/gostress"
	for _ in 1 2 3; do
		"$m" "gostress (Go runtime under load: goroutines, GC, preemption, timers; $(go env GOVERSION))" -- "$work/gostress"
	done | jq -s 'unique_by(.syscalls)' >"$work/goruntime.json"
	"$top/test/baseline/measure-runtime.sh" "$top/bin/clawos-init" "$top/bin/clawos-probe" >"$work/runtime.json"
	make -C "$top" build >/dev/null
	# libcontainer's init is a Go program: its runtime's background calls
	# depend on timing, so take several runs, and the Go runtime's own
	# measured calls (the empty Go program of the start baseline) below.
	for _ in 1 2 3 4 5; do
		"$top/test/baseline/measure-runtime.sh" --embedded "$top/bin/clawos-run" "$top/bin/clawos-probe" "$top/test/testdata/probe.whitelist.json"
	done | jq -s 'unique_by(.syscalls)' >"$work/embedded.json"
	jq -s '{"runtime-runc": [.[0], .[2]], "runtime-runc-privs": [.[3]], "clawos-init": [.[1]]}' "$work/runtime.json" |
		jq --slurpfile e "$work/embedded.json" '.["runtime-embedded"] = $e[0]' >"$work/measured.json"
	merge_runtime "$top/translate/baselines/$(uname -m).json" "$work/measured.json" "$work/goruntime.json"
}
# aarch64_runtime_baselines measures the same on aarch64, in the VM matrix's
# aarch64 guest (TestVMMeasureRuntime: qemu-system-aarch64, Debian's arm64
# kernel and runc), and the Go runtime's calls under qemu-user.
aarch64_runtime_baselines() {
	GOARCH=arm64 CGO_ENABLED=0 go build -o "$work/gostress-arm64" "$top/test/agents/gostress"
	mkdir -p "$work/empty-sysroot"
	for _ in 1 2 3; do
		"$m" --qemu-aarch64 "$work/empty-sysroot" "gostress (Go runtime under load: goroutines, GC, preemption, timers; $(go env GOVERSION), arm64)" -- "$work/gostress-arm64"
	done | jq -s 'unique_by(.syscalls)' >"$work/goruntime-arm64.json"
	make -C "$top" build vm-kernel >/dev/null
	(cd "$top/test" && CLAWOS_INTEGRATION=1 CLAWOS_MEASURE_RUNTIME="$work/aarch64.json" go test -tags seccomp -count=1 -run '^TestVMMeasureRuntime$' .)
	merge_runtime "$top/translate/baselines/aarch64.json" "$work/aarch64.json" "$work/goruntime-arm64.json"
	jq -c '.["clawos-init-reaper"][0]' "$work/aarch64.json" >"$work/reaper-arm64.json"
	merge_reaper "$top/translate/baselines/aarch64.json" "$work/reaper-arm64.json"
}
# merge_runtime FILE MEASURED GORUNTIME writes the internal baselines into
# FILE: MEASURED holds the measurements of each ({"runtime-runc": [...],
# ...}), GORUNTIME what the Go runtime of runc's and libcontainer's inits may
# call at any time.
merge_runtime() {
	jq --slurpfile m "$2" --slurpfile g "$3" '
		.baselines["runtime-runc"] = {
			description: "what runc'"'"'s init calls after loading the container-level filter, and what the Go runtime of that init may call at any time (internal: part of the container-level filter only)",
			measurements: ($m[0]["runtime-runc"] + $g[0])
		} |
		.baselines["runtime-runc-privs"] = {
			description: "what runc'"'"'s init calls after loading the container-level filter when the process runs without no_new_privs (it loads the filter before dropping privileges), and what the Go runtime of that init may call at any time (internal: single-stage kubelet profiles only)",
			measurements: ($m[0]["runtime-runc-privs"] + $g[0])
		} |
		.baselines["runtime-embedded"] = {
			description: "what libcontainer'"'"'s init, embedded in clawos-run, calls after loading the container-level filter, and what the Go runtime of that init may call at any time (internal)",
			measurements: ($m[0]["runtime-embedded"] + $g[0])
		} |
		.baselines["clawos-init"] = {
			description: "what clawos-init calls before it loads the exact whitelist (internal: part of the container-level filter only)",
			measurements: $m[0]["clawos-init"]
		}' "$1" >"$work/new.json"
	mv "$work/new.json" "$1"
	echo "wrote runtime baselines into $1"
}
# reaper_baseline measures, as root with runc, what clawos-init --init calls
# under the container-level filter (the agent's start, and pid 1 reaping and
# forwarding a signal) and writes it as the native arch's internal baseline
# clawos-init-reaper, which the container stage adds for clawos-run --init.
reaper_baseline() {
	make -C "$top" bin/clawos-init bin/clawos-probe >/dev/null
	"$top/test/baseline/measure-runtime.sh" --reaper "$top/bin/clawos-init" "$top/bin/clawos-probe" >"$work/reaper.json"
	merge_reaper "$top/translate/baselines/$(uname -m).json" "$work/reaper.json"
}
# merge_reaper FILE MEASUREMENT writes the clawos-init-reaper baseline.
merge_reaper() {
	jq --slurpfile r "$2" '.baselines["clawos-init-reaper"] = {
		description: "what clawos-init --init calls under the container-level filter: the agent'"'"'s start, and pid 1 that stays to reap and forward signals (internal: part of the container-level filter of clawos-run --init only)",
		measurements: $r
	}' "$1" >"$work/new.json"
	mv "$work/new.json" "$1"
	echo "wrote the clawos-init-reaper baseline into $1"
}
# learn_baselines adds to the native arch's start and tokio baselines what
# clawos-run --learn records of the programs they are measured on, 20 runs
# each: the Go runtime's timing-dependent calls show at full speed only.
learn_baselines() {
	make -C "$top" build >/dev/null
	CGO_ENABLED=0 go build -o "$work/goagent" "$top/test/agents/goagent"
	(cd "$top/test/agents/tokio-agent" && cargo build --release --offline -q)
	local tokio="$top/test/agents/tokio-agent/target/release/tokio-agent" l="$top/test/baseline/measure-learn.sh"
	local tokiover
	tokiover=$(sed -n 's/^version = "\(.*\)"/\1/p' /usr/share/cargo/registry/tokio-*/Cargo.toml | head -1)
	"$l" "$top/bin/clawos-run" 20 "goagent (empty main, $(go env GOVERSION), static)" -- "$work/goagent" >"$work/learn-start.json"
	"$l" "$top/bin/clawos-run" 20 "tokio-agent --minimal (tokio $tokiover, rt-multi-thread+signal)" -- "$tokio" --minimal >"$work/learn-tokio.json"
	f="$top/translate/baselines/$(uname -m).json"
	jq --slurpfile s "$work/learn-start.json" --slurpfile k "$work/learn-tokio.json" '
		.baselines.start.measurements |= (map(select(.tool | startswith("clawos-run --learn") | not)) + $s) |
		.baselines.tokio.measurements |= (map(select(.tool | startswith("clawos-run --learn") | not)) + $k)
	' "$f" >"$work/new.json"
	mv "$work/new.json" "$f"
	echo "wrote learn-mode measurements into $f"
}
if [ "${1:-}" = "--runtime-only" ]; then
	runtime_baselines
	reaper_baseline
	exit 0
fi
if [ "${1:-}" = "--reaper-only" ]; then
	reaper_baseline
	exit 0
fi
if [ "${1:-}" = "--aarch64-runtime-only" ]; then
	aarch64_runtime_baselines
	exit 0
fi
if [ "${1:-}" = "--learn-only" ]; then
	learn_baselines
	exit 0
fi

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
cc -static -O2 -o "$work/cempty" "$top/test/agents/cempty/main.c"
{
	runs 3 "/usr/bin/true (coreutils, glibc $glibc, dynamic)" -- /usr/bin/true
	runs 3 "goagent (empty main, $gover, static)" -- "$work/goagent"
	runs 3 "cempty (empty main, C, glibc $glibc, static)" -- "$work/cempty"
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
if [ "$(id -u)" = 0 ] && command -v runc >/dev/null; then
	runtime_baselines
	reaper_baseline
	learn_baselines
	aarch64_runtime_baselines
fi
