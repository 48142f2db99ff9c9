#!/usr/bin/env bash
# Measures the syscalls a program makes from execve to exit and prints them as
# one JSON object:
#   {"program": LABEL, "arch": ..., "kernel": ..., "tool": ..., "syscalls": [...]}
# The start and tokio baselines in translate/baselines/ are unions of these
# measurements (see test/baseline/generate.sh, `make baselines`).
#
# usage: measure.sh LABEL -- CMD [ARGS...]
#        measure.sh --qemu-aarch64 SYSROOT LABEL -- CMD [ARGS...]
#
# Native runs use strace -f (every thread and child). aarch64 runs use
# qemu-user's -strace on this x86_64 machine: qemu performs the execve itself,
# so execve is added to that list by definition (it is the call that starts
# the program), and numbers qemu cannot name are resolved with libseccomp's
# scmp_sys_resolver.
set -euo pipefail
qemu_root=""
if [ "$1" = "--qemu-aarch64" ]; then qemu_root=$2; shift 2; fi
label=$1; shift
[ "$1" = "--" ] && shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if [ -z "$qemu_root" ]; then
	arch=$(uname -m)
	tool=$(strace -V | head -1)
	strace -f -qq -o "$out" "$@" >/dev/null 2>&1 || true
	names=$(sed -E 's/^[0-9]+ +//; s/^<\.\.\. ([a-z0-9_]+) resumed>.*/\1(/' "$out" |
		grep -oE '^[a-z_][a-z0-9_]*\(' | tr -d '(')
else
	arch=aarch64
	tool="$(qemu-aarch64-static --version | head -1) -strace"
	qemu-aarch64-static -strace -L "$qemu_root" "$@" >/dev/null 2>"$out" || true
	names=$( {
		echo execve
		sed -nE 's/^[0-9]+ ([a-z_][a-z0-9_]*)\(.*/\1/p' "$out"
		sed -nE 's/^[0-9]+ Unknown syscall ([0-9]+).*/\1/p' "$out" |
			while read -r nr; do scmp_sys_resolver -a aarch64 "$nr"; done
	})
fi
calls=$(printf '%s\n' "$names" | grep -v '^$' | sort -u | jq -R . | jq -sc .)
jq -nc --arg p "$label" --arg a "$arch" --arg k "$(uname -r)" --arg t "$tool" \
	--argjson s "$calls" '{program: $p, arch: $a, kernel: $k, tool: $t, syscalls: $s}'
