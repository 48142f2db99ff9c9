#!/usr/bin/env bash
# Measures what an OCI runtime's init and clawos-init call after the runtime
# has loaded the container-level seccomp filter, and prints one JSON
# measurement per program (see measure.sh for the shape).
#
# Method: a bundle whose filter's default action is SCMP_ACT_LOG, so the
# kernel logs (type=1326) every call made under it; the log lines are grouped
# by comm ("runc:[2:INIT]", "clawos-init"); then the same for `runc exec`
# into the running container (the setns path differs). Needs root, runc and the kernel
# log. usage: measure-runtime.sh CLAWOS_INIT PROBE
#        measure-runtime.sh --embedded CLAWOS_RUN PROBE WHITELIST
#   (the embedded libcontainer of clawos-run, through its --measure-runtime)
#        measure-runtime.sh --reaper CLAWOS_INIT PROBE
#   (clawos-init --init: the child that becomes the agent, and pid 1 that
#   stays to reap and forward signals: a SIGTERM to pid 1 is forwarded to the
#   agent, which dies of it, and pid 1 exits with its status)
set -euo pipefail
# bundle DIR CLAWOS_INIT PROBE prepares a bundle in DIR whose container
# filter logs every call, with clawos-init and the probe in /.clawos.
bundle() {
	mkdir -p "$1/rootfs" "$1/clawos"
	cp "$2" "$1/clawos/clawos-init"
	cp "$3" "$1/clawos/probe"
	# ret SECCOMP_RET_ALLOW: the second stage allows everything here.
	printf '\x06\x00\x00\x00\x00\x00\xff\x7f' >"$1/clawos/allow.bpf"
	(cd "$1" && runc spec)
	jq --arg b "$1" --arg arch "SCMP_ARCH_$(uname -m | tr a-z A-Z)" '
		.process.terminal = false |
		.process.noNewPrivileges = true |
		.root = {path: "rootfs", readonly: true} |
		.mounts += [{destination: "/.clawos", type: "bind", source: ($b + "/clawos"), options: ["bind", "ro", "nosuid", "nodev"]}] |
		.linux.seccomp = {defaultAction: "SCMP_ACT_LOG", architectures: [$arch], flags: []}
	' "$1/config.json" >"$1/config.tmp" && mv "$1/config.tmp" "$1/config.json"
}
if [ "$1" = "--reaper" ]; then
	init=$2 probe=$3
	b=$(mktemp -d)
	trap 'runc delete -f clawos-measure-reaper >/dev/null 2>&1 || true; rm -rf "$b"' EXIT
	bundle "$b" "$init" "$probe"
	jq '.process.args = ["/.clawos/clawos-init", "/.clawos/allow.bpf", "--init", "--parent-fd", "3", "--exec", "/.clawos/probe", "--", "/.clawos/probe", "ready"]' \
		"$b/config.json" >"$b/config.tmp" && mv "$b/config.tmp" "$b/config.json"
	old=$(cat /proc/sys/kernel/printk_ratelimit)
	echo 0 >/proc/sys/kernel/printk_ratelimit
	mark="clawos-measure-reaper-$$-$RANDOM"
	echo "$mark" >/dev/kmsg
	# fd 3: the launcher's pipe: its go-ahead, then its writer goes away
	# after the agent has (pid 1 waits for it before it exits).
	(cd "$b" && runc run -d --preserve-fds 1 clawos-measure-reaper </dev/null >/dev/null 2>&1 3< <(printf g; sleep 2))
	sleep 0.3
	runc kill clawos-measure-reaper TERM
	for _ in $(seq 50); do
		[ "$(runc state clawos-measure-reaper 2>/dev/null | jq -r .status)" = stopped ] && break
		sleep 0.1
	done
	sleep 0.5
	echo "$old" >/proc/sys/kernel/printk_ratelimit
	names=$(dmesg | sed -n "/$mark/,\$p" | grep 'type=1326' | grep -F 'comm="clawos-init"' | sed -nE 's/.* syscall=([0-9]+) .*/\1/p' | sort -un |
		while read -r nr; do scmp_sys_resolver "$nr"; done | sort -u | jq -R . | jq -sc .)
	jq -nc --arg p "clawos-init --init (static, glibc $(dpkg-query -W -f='${Version}' "libc6:$(dpkg --print-architecture)")): the agent's start, and pid 1 reaping and forwarding a SIGTERM" \
		--arg a "$(uname -m)" --arg k "$(uname -r)" --arg t "seccomp SCMP_ACT_LOG, kernel audit log" --argjson s "$names" \
		'{program: $p, arch: $a, kernel: $k, tool: $t, syscalls: $s}'
	exit 0
fi
if [ "$1" = "--embedded" ]; then
	run=$2 probe=$3 wl=$4
	old=$(cat /proc/sys/kernel/printk_ratelimit)
	echo 0 >/proc/sys/kernel/printk_ratelimit
	mark="clawos-measure-$$-$RANDOM"
	echo "$mark" >/dev/kmsg
	"$run" --runtime embedded --measure-runtime --whitelist "$wl" -- "$probe" call 39 >/dev/null 2>&1 || true
	sleep 0.5
	echo "$old" >/proc/sys/kernel/printk_ratelimit
	log=$(dmesg | sed -n "/$mark/,\$p" | grep 'type=1326' || true)
	ver=$(cd "$(dirname "$0")/../.." && go list -m -f '{{.Version}}' github.com/opencontainers/runc)
	names=$(printf '%s\n' "$log" | grep -F 'comm="runc:[2:INIT]"' | sed -nE 's/.* syscall=([0-9]+) .*/\1/p' | sort -un |
		while read -r nr; do scmp_sys_resolver "$nr"; done | sort -u | jq -R . | jq -sc .)
	jq -nc --arg p "libcontainer $ver (embedded in clawos-run) init after loading the container filter (no_new_privs)" \
		--arg a "$(uname -m)" --arg k "$(uname -r)" --arg t "seccomp SCMP_ACT_LOG, kernel audit log" --argjson s "$names" \
		'{program: $p, arch: $a, kernel: $k, tool: $t, syscalls: $s}'
	exit 0
fi
init=$1 probe=$2
b=$(mktemp -d)
trap 'runc delete -f clawos-measure >/dev/null 2>&1 || true; rm -rf "$b"' EXIT
mkdir -p "$b/rootfs" "$b/clawos"
cp "$init" "$b/clawos/clawos-init"
cp "$probe" "$b/clawos/probe"
head -c 8 /dev/zero >"$b/clawos/allow.bpf"
# ret SECCOMP_RET_ALLOW: the second stage allows everything here.
printf '\x06\x00\x00\x00\x00\x00\xff\x7f' >"$b/clawos/allow.bpf"
(cd "$b" && runc spec)
jq --arg b "$b" '
	.process.terminal = false |
	.process.noNewPrivileges = true |
	.process.args = ["/.clawos/clawos-init", "/.clawos/allow.bpf", "--exec", "/.clawos/probe", "--parent-fd", "3", "--exec-at", "0x123456789000", "--", "/.clawos/probe", "call", "39"] |
	.root = {path: "rootfs", readonly: true} |
	.mounts += [{destination: "/.clawos", type: "bind", source: ($b + "/clawos"), options: ["bind", "ro", "nosuid", "nodev"]}] |
	.linux.seccomp = {defaultAction: "SCMP_ACT_LOG", architectures: ["SCMP_ARCH_X86_64"], flags: []}
' "$b/config.json" >"$b/config.tmp" && mv "$b/config.tmp" "$b/config.json"
old=$(cat /proc/sys/kernel/printk_ratelimit)
echo 0 >/proc/sys/kernel/printk_ratelimit
mark="clawos-measure-$$-$RANDOM"
echo "$mark" >/dev/kmsg
# fd 3: a pipe with the launcher's go-ahead, whose writer lives on, as
# clawos-run's --parent-fd.
(cd "$b" && runc run --preserve-fds 1 clawos-measure >/dev/null 2>&1 3< <(printf g; sleep 10)) || true
sleep 0.5
log=$(dmesg | sed -n "/$mark/,\$p" | grep 'type=1326' || true)
# runc exec (what containerd's shim runs for crictl/kubectl exec): a
# process.json as the shim writes it, into a container that waits.
jq '.process.args = ["/.clawos/clawos-init", "/.clawos/allow.bpf", "--exec", "/.clawos/probe", "--", "/.clawos/probe", "ready"]' \
	"$b/config.json" >"$b/config.tmp" && mv "$b/config.tmp" "$b/config.json"
runc delete -f clawos-measure >/dev/null 2>&1 || true
(cd "$b" && runc run -d clawos-measure >/dev/null 2>&1 </dev/null)
sleep 0.3
jq '.process | .args = ["/.clawos/clawos-init", "/.clawos/allow.bpf", "--exec", "/.clawos/probe", "--", "/.clawos/probe", "call", "39"]' \
	"$b/config.json" >"$b/process.json"
emark="clawos-measure-exec-$$-$RANDOM"
echo "$emark" >/dev/kmsg
runc exec --process "$b/process.json" clawos-measure >/dev/null 2>&1 || true
sleep 0.5
elog=$(dmesg | sed -n "/$emark/,\$p" | grep 'type=1326' || true)
runc delete -f clawos-measure >/dev/null 2>&1 || true
# runc run without no_new_privs (a Kubernetes pod that does not set
# allowPrivilegeEscalation: false): runc must load the filter before it
# drops privileges, so its id and capability calls run under it.
jq '.process.noNewPrivileges = false | .process.args = ["/.clawos/probe", "call", "39"]' \
	"$b/config.json" >"$b/config.tmp" && mv "$b/config.tmp" "$b/config.json"
pmark="clawos-measure-privs-$$-$RANDOM"
echo "$pmark" >/dev/kmsg
(cd "$b" && runc run clawos-measure >/dev/null 2>&1) || true
sleep 0.5
echo "$old" >/proc/sys/kernel/printk_ratelimit
plog=$(dmesg | sed -n "/$pmark/,\$p" | grep 'type=1326' || true)
runc_ver=$(runc --version | head -1)
for comm in 'runc:[2:INIT]' clawos-init; do
	names=$(printf '%s\n' "$log" | grep -F "comm=\"$comm\"" | sed -nE 's/.* syscall=([0-9]+) .*/\1/p' | sort -un |
		while read -r nr; do scmp_sys_resolver "$nr"; done | sort -u | jq -R . | jq -sc .)
	case $comm in
	clawos-init) label="clawos-init (static, glibc $(dpkg-query -W -f='${Version}' "libc6:$(dpkg --print-architecture)")) before loading the exact filter" ;;
	*) label="$runc_ver init after loading the container filter (runc run, no_new_privs)" ;;
	esac
	jq -nc --arg p "$label" --arg a "$(uname -m)" --arg k "$(uname -r)" \
		--arg t "seccomp SCMP_ACT_LOG, kernel audit log" --argjson s "$names" \
		'{program: $p, arch: $a, kernel: $k, tool: $t, syscalls: $s}'
done
names=$(printf '%s\n' "$elog" | grep -F 'comm="runc:[2:INIT]"' | sed -nE 's/.* syscall=([0-9]+) .*/\1/p' | sort -un |
	while read -r nr; do scmp_sys_resolver "$nr"; done | sort -u | jq -R . | jq -sc .)
jq -nc --arg p "$runc_ver init after loading the container filter (runc exec --process, no_new_privs)" --arg a "$(uname -m)" \
	--arg k "$(uname -r)" --arg t "seccomp SCMP_ACT_LOG, kernel audit log" --argjson s "$names" \
	'{program: $p, arch: $a, kernel: $k, tool: $t, syscalls: $s}'
names=$(printf '%s\n' "$plog" | grep -F 'comm="runc:[2:INIT]"' | sed -nE 's/.* syscall=([0-9]+) .*/\1/p' | sort -un |
	while read -r nr; do scmp_sys_resolver "$nr"; done | sort -u | jq -R . | jq -sc .)
jq -nc --arg p "$runc_ver init after loading the container filter (runc run, without no_new_privs)" --arg a "$(uname -m)" \
	--arg k "$(uname -r)" --arg t "seccomp SCMP_ACT_LOG, kernel audit log" --argjson s "$names" \
	'{program: $p, arch: $a, kernel: $k, tool: $t, syscalls: $s}'
