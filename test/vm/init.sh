#!/bin/busybox sh
# /init of the test VMs (test/vm_test.go builds the initramfs). The kernel
# command line names the configuration: clawos.vm=apparmor|cgroupv2|nolandlock|noia32|aarch64|measure.
# Every result is one line "CLAWOS <name> <value>" on the serial console.
/bin/busybox --install -s /bin
# The initramfs root cannot be pivot_root'ed (a container runtime does
# that): move everything to a tmpfs first and make it the root.
if [ ! -e /.switched ]; then
	mkdir -p /newroot
	mount -t tmpfs -o size=90% tmpfs /newroot
	for f in /*; do
		case $f in /newroot|/proc|/sys|/dev) ;; *) cp -a "$f" /newroot/ ;; esac
	done
	mkdir -p /newroot/proc /newroot/sys /newroot/dev
	touch /newroot/.switched
	exec switch_root /newroot /init
fi
mount -t proc proc /proc
mount -t sysfs sys /sys
# Device nodes: a sandbox in a user namespace gets its default devices
# bind-mounted from here.
mount -t devtmpfs devtmpfs /dev
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mount -t tmpfs tmpfs /tmp
mkdir -p /run && mount -t tmpfs tmpfs /run
echo 0 > /proc/sys/kernel/printk_ratelimit
export PATH=/bin:/sbin:/usr/bin:/
vm=$(sed -n 's/.*clawos\.vm=\([a-z0-9]*\).*/\1/p' /proc/cmdline)
echo "CLAWOS config $vm"
echo "CLAWOS kernel $(uname -r)"
echo "CLAWOS arch $(uname -m)"
echo "CLAWOS apparmor-enabled $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || echo missing)"

# cgroups: v2 unified for cgroupv2, v1 controllers otherwise.
if [ "$vm" = cgroupv2 ]; then
	mount -t cgroup2 none /sys/fs/cgroup
	echo "+cpu +memory +pids" > /sys/fs/cgroup/cgroup.subtree_control
	echo "CLAWOS cgroup v2"
else
	mount -t tmpfs cgroup /sys/fs/cgroup
	for c in cpuset cpu,cpuacct blkio memory devices freezer pids; do
		mkdir -p /sys/fs/cgroup/$c && mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c
	done
	echo "CLAWOS cgroup v1"
fi
ll=$(/clawos-run --check 2>/dev/null | sed -n 's/^Landlock  *\(ABI [0-9]*\|off\).*/\1/p' | sed 's/ABI //')
echo "CLAWOS landlock ${ll:-unknown}"

# stamp NAME: the guest's uptime at NAME (TestVM logs where the time goes).
stamp() { echo "CLAWOS t-$1 $(cut -d' ' -f1 /proc/uptime)"; }
stamp boot

# run ARGS...: clawos-run (embedded runtime) with ARGS; its exit status,
# and its stderr kept in /tmp/run.log.
run() {
	/clawos-run --state-dir /run/clawos "$@" >/tmp/run.out 2>/tmp/run.log
	echo $?
}

# handoff ARGS...: clawos-run ARGS -- /clawos-probe ready in the
# background, handed off at once; once the agent is ready and the launcher's
# process runs clawos-wait, SIGTERM it: prints the program it ran and its
# exit status (137: the agent, pid 1 without a handler, is killed after
# --kill-after).
handoff() {
	/clawos-run --state-dir /run/clawos --hand-off-after 0s --kill-after 200ms "$@" -- /clawos-probe ready >/tmp/h.out 2>/tmp/h.log &
	pid=$!
	i=0
	while [ "$i" -lt 200 ] && ! grep -q ready /tmp/h.out; do sleep 0.1; i=$((i + 1)); done
	i=0
	while [ "$i" -lt 100 ] && [ "$(basename "$(readlink /proc/$pid/exe)")" != clawos-wait ]; do sleep 0.1; i=$((i + 1)); done
	prog=$(basename "$(readlink /proc/$pid/exe)")
	kill -TERM "$pid"
	wait "$pid"
	echo "$prog $?"
}

case $vm in
apparmor)
	attr=/proc/self/attr/apparmor/exec
	[ -e "$attr" ] || attr=/proc/self/attr/exec
	# confined CMD...: run CMD under the profile clawos-vm-probe, print its status.
	confined() {
		(echo "exec clawos-vm-probe" > "$attr" && exec "$@") >/dev/null 2>&1
		echo $?
	}
	for mode in enforce complain; do
		flags="-r -K"
		[ "$mode" = complain ] && flags="$flags -C"
		if apparmor_parser $flags /profiles/probe.aa >/tmp/parser.log 2>&1; then
			echo "CLAWOS $mode-load ok"
		else
			echo "CLAWOS $mode-load failed: $(cat /tmp/parser.log | tr '\n' ' ')"
		fi
		dmesg -c >/dev/null
		echo "CLAWOS $mode write-outside-profile $(confined /clawos-probe write-file /etc/clawos-denied)"
		echo "CLAWOS $mode write-tmp $(confined /clawos-probe write-file /tmp/clawos-ok)"
		echo "CLAWOS $mode socket-unix $(confined /clawos-probe call 41 1 1)"
		echo "CLAWOS $mode socket-inet-stream $(confined /clawos-probe call 41 2 1)"
		echo "CLAWOS $mode logged-allowed $(dmesg | grep -c 'apparmor="ALLOWED"')"
		echo "CLAWOS $mode logged-denied $(dmesg | grep -c 'apparmor="DENIED"')"
		rm -f /etc/clawos-denied
	done
	# clawos-run --apparmor required: the agent runs under its generated
	# profile, in enforce mode.
	echo "CLAWOS run-required $(run --apparmor required --whitelist /vmtest/vmprobe.json -- /clawos-probe status)"
	label=$(grep '^AppArmor ' /tmp/run.out | head -1)
	echo "CLAWOS run-label-raw ${label:-none}" | tr ' ' '_' | sed 's/^CLAWOS_run-label-raw_/CLAWOS run-label-raw /'
	echo "CLAWOS run-label $(echo "$label" | sed -e 's/^AppArmor //' -e 's/clawos-[0-9a-f]\{8\}-[0-9a-f]\{12\}/clawos-ID/' -e 's/ (/:/' -e 's/)$//')"
	[ -s /tmp/run.log ] && tail -3 /tmp/run.log
	# Profiles are named by a digest of their text, loaded when a sandbox
	# starts and removed after their last user: none left after that run;
	# two sandboxes of one whitelist with different mounts have two, both
	# loaded while they run, none after.
	loaded() { grep -cE '^clawos-[0-9a-f]{8}-[0-9a-f]{12} ' /sys/kernel/security/apparmor/profiles; }
	echo "CLAWOS aa-after-run $(loaded)"
	/clawos-run --state-dir /run/clawos --apparmor required --init --whitelist /vmtest/vmprobe.json -- /clawos-probe ready >/dev/null 2>/tmp/aa1.log &
	p1=$!
	/clawos-run --state-dir /run/clawos --apparmor required --init --ro-bind /etc:/mnt --whitelist /vmtest/vmprobe.json -- /clawos-probe ready >/dev/null 2>/tmp/aa2.log &
	p2=$!
	# Both agents running (their clawos-run forwards SIGTERM from then on).
	for _ in $(seq 120); do [ "$(pidof clawos-probe | wc -w)" -ge 2 ] && break; sleep 0.5; done
	echo "CLAWOS aa-two-loaded $(loaded)"
	kill -TERM $p1 $p2
	wait $p1
	wait $p2
	echo "CLAWOS aa-unloaded $(loaded)"
	cat /tmp/aa1.log /tmp/aa2.log | tail -4
	;;
cgroupv2)
	echo "CLAWOS v2 forks-200 $(run --apparmor off --whitelist /vmtest/minimal.json --slice wasm -- /clawos-probe forks 200)"
	echo "CLAWOS v2 forks-100 $(run --apparmor off --whitelist /vmtest/minimal.json --slice wasm -- /clawos-probe forks 100)"
	echo "CLAWOS v2 alloc-600 $(run --apparmor off --whitelist /vmtest/minimal.json --slice wasm -- /clawos-probe alloc 600)"
	echo "CLAWOS v2 alloc-8 $(run --apparmor off --whitelist /vmtest/minimal.json --slice wasm -- /clawos-probe alloc 8)"
	echo "CLAWOS v2 unlisted-kill $(run --apparmor off --whitelist /vmtest/minimal.json -- /clawos-probe call 102)"
	echo "CLAWOS v2 exec-kill $(run --apparmor off --whitelist /vmtest/vmprobe.json -- /clawos-probe exec /bin/busybox)"
	# Handed off to clawos-wait: its clean-up removes the v2 cgroup too.
	r=$(handoff --apparmor off --whitelist /vmtest/vmprobe.json --slice wasm)
	echo "CLAWOS v2 handoff-program ${r% *}"
	echo "CLAWOS v2 handoff ${r#* }"
	echo "CLAWOS v2 cgroups-left $(ls -d /sys/fs/cgroup/clawos-* 2>/dev/null | wc -l)"
	echo "CLAWOS v2 bundles-left $(ls /run/clawos/bundles 2>/dev/null | wc -l)"
	;;
nolandlock)
	echo "CLAWOS nl start-only-auto $(run --apparmor off --whitelist /vmtest/vmprobe.json -- /clawos-probe call 39)"
	echo "CLAWOS nl start-only-exec-kill $(run --apparmor off --whitelist /vmtest/vmprobe.json -- /clawos-probe exec /bin/busybox)"
	echo "CLAWOS nl exec-allowed-auto $(run --apparmor off --whitelist /vmtest/exec-allowed.json -- /clawos-probe call 39)"
	echo "CLAWOS nl exec-allowed-auto-says $(grep -c 'Landlock, which this kernel lacks' /tmp/run.log)"
	echo "CLAWOS nl required $(run --apparmor off --landlock required --whitelist /vmtest/vmprobe.json -- /clawos-probe call 39)"
	echo "CLAWOS nl exec-allowed-off $(run --apparmor off --landlock off --whitelist /vmtest/exec-allowed.json -- /clawos-probe call 39)"
	# The hook's path: clawos-init finds a bare command name in $PATH
	# whether or not exec can be restricted (an allow-all filter here).
	echo "CLAWOS nl init-bare-name $(PATH=/bin:/ /clawos-init hex:060000000000ff7f -- clawos-probe call 39 >/dev/null 2>&1; echo $?)"
	# Port rules in the host's network namespace need Landlock's network
	# rules: refused here.
	echo "CLAWOS nl hostnet-ports $(run --apparmor off --net host --whitelist /vmtest/demo/ironclaw.whitelist.json -- /clawos-probe call 39)"
	echo "CLAWOS nl hostnet-ports-says $(grep -c "without Landlock's network rules" /tmp/run.log)"
	;;
noia32)
	. /vmtest/nr.sh
	/clawos-run --check >/tmp/check.out 2>&1
	grep '^ia32' /tmp/check.out
	echo "CLAWOS noia32 check-says-refused $(grep '^ia32 syscalls' /tmp/check.out | grep -c 'refused by the platform')"
	echo "CLAWOS noia32 int80-unfiltered $(/clawos-probe int80 20 >/dev/null 2>&1; echo $?)"
	echo "CLAWOS noia32 int80-sandboxed $(run --apparmor off --whitelist /vmtest/vmprobe.json -- /clawos-probe int80 20)"
	echo "CLAWOS noia32 x32-sandboxed $(run --apparmor off --whitelist /vmtest/vmprobe.json -- /clawos-probe call $((NR_getpid | 0x40000000)))"
	echo "CLAWOS noia32 getpid-sandboxed $(run --apparmor off --whitelist /vmtest/vmprobe.json -- /clawos-probe call $NR_getpid)"
	# Linux 6.12 has Landlock's network rules (ABI 6): port rules hold in
	# the host's network namespace, a refused TCP port fails with EACCES.
	echo "CLAWOS noia32 hostnet-getpid $(run --apparmor off --net host --whitelist /vmtest/demo/ironclaw.whitelist.json -- /clawos-probe call $NR_getpid)"
	echo "CLAWOS noia32 hostnet-refused-port $(run --apparmor off --net host --whitelist /vmtest/demo/ironclaw.whitelist.json -- /clawos-probe connect 127.0.0.1 8080)"
	[ -s /tmp/run.log ] && tail -3 /tmp/run.log
	# make demo, on this kernel: nf_tables for the reference whitelist's
	# port rules, then the demo as the Makefile runs it.
	stamp modules
	loaded=loaded
	for m in $(cat /modules/order); do
		insmod /modules/$m.ko 2>/tmp/insmod.log || { loaded="failed:$m"; cat /tmp/insmod.log; }
	done
	echo "CLAWOS noia32 modules $loaded"
	timeout 300 /clawos-demo --whitelist /vmtest/demo/ironclaw.whitelist.json --probe /clawos-probe --run /clawos-run >/tmp/demo.out 2>&1
	echo "CLAWOS noia32 demo $?"
	echo "CLAWOS noia32 demo-says-refused $(grep 'int 0x80' /tmp/demo.out | grep -c 'refused by the platform')"
	grep -v '^$' /tmp/demo.out | tail -25
	stamp demo
	;;
aarch64)
	. /vmtest/nr.sh
	echo "CLAWOS a64 status $(run --apparmor off --whitelist /vmtest/vmprobe.json -- /clawos-probe status)"
	# (getuid is in aarch64's start baseline: busybox calls it; getgid is not)
	echo "CLAWOS a64 unlisted-kill $(run --apparmor off --whitelist /vmtest/minimal.json -- /clawos-probe call $NR_getgid)"
	echo "CLAWOS a64 runc-status $(run --runtime runc --apparmor off --whitelist /vmtest/vmprobe.json -- /clawos-probe status)"
	echo "CLAWOS a64 runc-unlisted-kill $(run --runtime runc --apparmor off --whitelist /vmtest/minimal.json -- /clawos-probe call $NR_getgid)"
	echo "CLAWOS a64 runc-exec-kill $(run --runtime runc --apparmor off --whitelist /vmtest/vmprobe.json -- /clawos-probe exec /bin/busybox)"
	echo "CLAWOS a64 exec-kill $(run --apparmor off --whitelist /vmtest/vmprobe.json -- /clawos-probe exec /bin/busybox)"
	echo "CLAWOS a64 exec-allowed $(run --apparmor off --whitelist /vmtest/exec-allowed.json -- /clawos-probe exec /dev/.clawos/clawos-init)"
	# --init: pid 1 stays (its measured aarch64 calls in the container
	# stage), the agent its child, under both runtimes.
	echo "CLAWOS a64 init-status $(run --init --apparmor off --whitelist /vmtest/vmprobe.json -- /clawos-probe status)"
	echo "CLAWOS a64 init-unlisted-kill $(run --init --apparmor off --whitelist /vmtest/minimal.json -- /clawos-probe call $NR_getgid)"
	echo "CLAWOS a64 runc-init-status $(run --init --runtime runc --apparmor off --whitelist /vmtest/vmprobe.json -- /clawos-probe status)"
	echo "CLAWOS a64 forks-200 $(run --apparmor off --whitelist /vmtest/minimal.json --slice wasm -- /clawos-probe forks 200)"
	echo "CLAWOS a64 forks-100 $(run --apparmor off --whitelist /vmtest/minimal.json --slice wasm -- /clawos-probe forks 100)"
	r=$(handoff --apparmor off --whitelist /vmtest/vmprobe.json)
	echo "CLAWOS a64 handoff-program ${r% *}"
	echo "CLAWOS a64 handoff ${r#* }"
	echo "CLAWOS a64 handoff-kill $(run --hand-off-after 0s --apparmor off --whitelist /vmtest/minimal.json -- /clawos-probe call $NR_getgid)"
	echo "CLAWOS a64 bundles-left $(ls /run/clawos/bundles 2>/dev/null | wc -l)"
	# A filter compiled on the build host (clawos-policy compile --arch
	# aarch64 --baseline start): clawos-init loads it and execs the probe;
	# the probe loads the same bytes itself.
	init_bpf() { /clawos-init /vmtest/cross.bpf -- /clawos-probe call "$@" >/dev/null 2>&1; echo $?; }
	probe_bpf() { /clawos-probe --bpf /vmtest/cross.bpf call "$@" >/dev/null 2>&1; echo $?; }
	echo "CLAWOS a64 init-bpf-allowed $(init_bpf $NR_getppid)"
	echo "CLAWOS a64 init-bpf-kill $(init_bpf $NR_getgid)"
	echo "CLAWOS a64 init-bpf-denied $(init_bpf $NR_geteuid)"
	echo "CLAWOS a64 probe-bpf-allowed $(probe_bpf $NR_getppid)"
	echo "CLAWOS a64 probe-bpf-kill $(probe_bpf $NR_getgid)"
	[ -s /tmp/run.log ] && tail -3 /tmp/run.log
	;;
measure)
	# What the runtimes' inits and clawos-init call under the container
	# filter on this architecture, as test/baseline/measure-runtime.sh
	# measures it on the build host: a container filter whose default is
	# SCMP_ACT_LOG, read back from the kernel log. One line per program:
	# "CLAWOS measure LABEL NR,NR,...". The bundle's configurations were
	# written on the build host (TestVMMeasureRuntime).
	. /vmtest/nr.sh
	# calls LABEL COMM MARK: the numbers COMM called after MARK.
	calls() {
		echo "CLAWOS measure $1 $(dmesg | sed -n "/$3/,\$p" | grep 'type=1326' | grep -F "comm=\"$2\"" |
			sed -n 's/.* syscall=\([0-9]*\) .*/\1/p' | sort -un | tr '\n' ',' | sed 's/,$//')"
	}
	for i in 1 2 3 4 5; do
		dmesg -c >/dev/null
		echo "clawos-measure-embedded-$i" >/dev/kmsg
		/clawos-run --state-dir /run/clawos --apparmor off --runtime embedded --measure-runtime \
			--whitelist /vmtest/vmprobe.json -- /clawos-probe call $NR_getppid >/dev/null 2>&1
		calls embedded-$i 'runc:[2:INIT]' "clawos-measure-embedded-$i"
	done
	b=/measure/bundle
	cp /clawos-init /clawos-probe $b/clawos/
	mkdir -p $b/rootfs
	cd $b
	# runc run, with the launcher's pipe on fd 3 (its go-ahead, and its
	# writer lives on).
	cp /measure/config-run.json config.json
	dmesg -c >/dev/null
	echo "clawos-measure-run" >/dev/kmsg
	mkfifo /tmp/parent-fd
	(printf g; exec sleep 60) >/tmp/parent-fd &
	writer=$!
	runc run --preserve-fds 1 clawos-measure </dev/null >/dev/null 2>&1 3</tmp/parent-fd
	kill $writer
	calls runc-run 'runc:[2:INIT]' clawos-measure-run
	calls clawos-init clawos-init clawos-measure-run
	runc delete -f clawos-measure >/dev/null 2>&1
	# runc exec into a running container (the shim's path).
	cp /measure/config-ready.json config.json
	runc run -d clawos-measure </dev/null >/dev/null 2>&1
	dmesg -c >/dev/null
	echo "clawos-measure-exec" >/dev/kmsg
	runc exec --process /measure/process.json clawos-measure >/dev/null 2>&1
	calls runc-exec 'runc:[2:INIT]' clawos-measure-exec
	runc delete -f clawos-measure >/dev/null 2>&1
	# runc run without no_new_privs.
	cp /measure/config-privs.json config.json
	dmesg -c >/dev/null
	echo "clawos-measure-privs" >/dev/kmsg
	runc run clawos-measure </dev/null >/dev/null 2>/tmp/runc-privs.log || cat /tmp/runc-privs.log
	calls runc-privs 'runc:[2:INIT]' clawos-measure-privs
	runc delete -f clawos-measure >/dev/null 2>&1
	# clawos-init --init: a SIGTERM to pid 1 is forwarded to the agent,
	# which dies of it, and pid 1 exits with its status.
	cp /measure/config-reaper.json config.json
	dmesg -c >/dev/null
	echo "clawos-measure-reaper" >/dev/kmsg
	# fd 3: the launcher's pipe: its go-ahead; pid 1 waits (5 s at most)
	# for another byte or its hang-up once the agent is gone.
	mkfifo /tmp/reaper-fd
	(printf g; exec sleep 60) >/tmp/reaper-fd &
	writer=$!
	runc run -d --preserve-fds 1 clawos-measure </dev/null >/dev/null 2>&1 3</tmp/reaper-fd
	sleep 1
	runc kill clawos-measure TERM
	sleep 1
	kill $writer
	for _ in $(seq 100); do
		runc state clawos-measure 2>/dev/null | grep -q '"status": "stopped"' && break
		sleep 0.2
	done
	calls clawos-init-reaper clawos-init clawos-measure-reaper
	runc delete -f clawos-measure >/dev/null 2>&1
	echo "CLAWOS runc-version $(runc --version | sed -n 's/^runc version //p')"
	echo "CLAWOS done"
	poweroff -f
	;;
esac

# The seccomp kernel tests, on this kernel.
stamp checks
cd /vmtest/test
if ./test.test -test.run "TestKernel" -test.v >/tmp/seccomp.log 2>&1; then
	echo "CLAWOS seccomp-tests PASS"
	echo "CLAWOS seccomp-cases-passed $(grep -c -- "--- PASS" /tmp/seccomp.log)"
else
	echo "CLAWOS seccomp-tests FAIL"
	# A failing case's messages come before its "--- FAIL" line.
	grep -B6 -A1 -- "--- FAIL" /tmp/seccomp.log | head -60
fi
stamp seccomp-tests
echo "CLAWOS done"
poweroff -f
