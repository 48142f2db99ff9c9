#!/bin/busybox sh
# /init of the AppArmor test VM (test/vm_test.go builds the initramfs).
# Every result is one line "CLAWOS <name> <value>" on the serial console.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mount -t tmpfs tmpfs /tmp
echo 0 > /proc/sys/kernel/printk_ratelimit
echo "CLAWOS kernel $(uname -r)"
echo "CLAWOS apparmor-enabled $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || echo missing)"

echo "CLAWOS kernel-features $(ls /sys/kernel/security/apparmor/features | tr '\n' ',')"

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

# The seccomp kernel tests of the core issue, on this LTS kernel.
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
