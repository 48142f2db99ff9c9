#!/usr/bin/env bash
# Measures a program with clawos-run --learn (seccomp user notification,
# every thread and child from the first instruction after execve) over RUNS
# runs merged, and prints one JSON measurement (see measure.sh for the
# shape). strace slows a program enough that its runtime's timing-dependent
# calls (the Go runtime's preemption signals: tgkill, getpid, rt_sigreturn;
# sched_yield) may not show; a run at full speed shows them.
# usage: measure-learn.sh CLAWOS_RUN RUNS LABEL -- CMD [ARGS...]
set -euo pipefail
run=$1 runs=$2 label=$3; shift 3
[ "$1" = "--" ] && shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
out="$work/learned.json"
for i in $(seq "$runs"); do
	merge=()
	[ "$i" -gt 1 ] && merge=(--merge "$out")
	"$run" --learn "$out" "${merge[@]}" -- "$@" >/dev/null 2>&1
done
jq -c --arg p "$label" --arg a "$(uname -m)" --arg k "$(uname -r)" \
	--arg t "clawos-run --learn (seccomp user notification), $runs runs merged" \
	'{program: $p, arch: $a, kernel: $k, tool: $t, syscalls: [.syscalls[].name] | sort}' "$out"
