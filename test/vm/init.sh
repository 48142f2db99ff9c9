#!/bin/busybox sh
# /init of the test VMs (test/vm_test.go builds the initramfs). The kernel
# command line names the configuration: clawos.vm=apparmor|cgroupv2|nolandlock.
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

# run ARGS...: clawos-run (embedded runtime) with ARGS; its exit status,
# and its stderr kept in /tmp/run.log.
run() {
	/clawos-run --state-dir /run/clawos "$@" >/tmp/run.out 2>/tmp/run.log
	echo $?
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
	echo "CLAWOS run-label $(echo "$label" | sed -e 's/^AppArmor //' -e 's/clawos-[0-9a-f]*/clawos-ID/' -e 's/ (/:/' -e 's/)$//')"
	[ -s /tmp/run.log ] && tail -3 /tmp/run.log
	;;
cgroupv2)
	echo "CLAWOS v2 forks-200 $(run --apparmor off --whitelist /vmtest/minimal.json --slice wasm -- /clawos-probe forks 200)"
	echo "CLAWOS v2 forks-100 $(run --apparmor off --whitelist /vmtest/minimal.json --slice wasm -- /clawos-probe forks 100)"
	echo "CLAWOS v2 alloc-700 $(run --apparmor off --whitelist /vmtest/minimal.json --slice wasm -- /clawos-probe alloc 700)"
	echo "CLAWOS v2 alloc-100 $(run --apparmor off --whitelist /vmtest/minimal.json --slice wasm -- /clawos-probe alloc 100)"
	echo "CLAWOS v2 unlisted-kill $(run --apparmor off --whitelist /vmtest/minimal.json -- /clawos-probe call 102)"
	echo "CLAWOS v2 exec-kill $(run --apparmor off --whitelist /vmtest/vmprobe.json -- /clawos-probe exec /bin/busybox)"
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
	;;
esac

# The seccomp kernel tests, on this kernel.
cd /vmtest/test
if ./test.test -test.run "TestKernel" -test.v >/tmp/seccomp.log 2>&1; then
	echo "CLAWOS seccomp-tests PASS"
	echo "CLAWOS seccomp-cases-passed $(grep -c -- "--- PASS" /tmp/seccomp.log)"
else
	echo "CLAWOS seccomp-tests FAIL"
	tail -20 /tmp/seccomp.log
fi
echo "CLAWOS done"
poweroff -f
