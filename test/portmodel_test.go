package test

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/namespaces"
)

// TestPortPolicyRenderings installs one port policy both ways the
// launchers do, over netlink (root's path: namespaces.PortPolicy.Install)
// and as nft text (a non-root caller's: Ruleset through nft), each in a
// network namespace of its own, and checks that the kernel holds the same
// ruleset: `nft list table` of both, counters zeroed, is identical. For an
// enforcing policy, a complain-mode one, connect only, and --net none.
func TestPortPolicyRenderings(t *testing.T) {
	requireSandbox(t)
	var host unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &host); err != nil {
		t.Fatal(err)
	}
	// netns starts a process in a new network namespace and opens it, once
	// it is not this process's (never install into the host's).
	netns := func() (*os.File, func()) {
		cmd := exec.Command("unshare", "--net", "sleep", "600")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stop := func() { cmd.Process.Kill(); cmd.Wait() }
		path := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"
		deadline := time.Now().Add(10 * time.Second)
		for {
			var st unix.Stat_t
			if err := unix.Stat(path, &st); err == nil && (st.Ino != host.Ino || st.Dev != host.Dev) {
				break
			}
			if time.Now().After(deadline) {
				stop()
				t.Fatal("unshare --net did not make a network namespace in 10 s")
			}
			time.Sleep(5 * time.Millisecond)
		}
		f, err := os.Open(path)
		if err != nil {
			stop()
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Ino == host.Ino {
			f.Close()
			stop()
			t.Fatalf("the opened namespace is the host's: %v", err)
		}
		return f, func() { f.Close(); stop() }
	}
	for _, p := range []namespaces.PortPolicy{
		{Connect: []int{5432, 443}, Bind: []int{8080}},
		{Connect: []int{5432}, Bind: []int{8080}, Complain: true},
		{Connect: []int{53}},
		{Connect: []int{}, Bind: []int{}},
	} {
		a, doneA := netns()
		b, doneB := netns()
		if err := p.Install(a); err != nil {
			t.Fatal(err)
		}
		nft := exec.Command("nsenter", "--net=/proc/self/fd/3", "nft", "-f", "-")
		nft.ExtraFiles = []*os.File{b}
		nft.Stdin = strings.NewReader(p.Ruleset())
		if out, err := nft.CombinedOutput(); err != nil {
			t.Fatalf("nft -f: %v\n%s", err, out)
		}
		show := func(ns *os.File) string {
			cmd := exec.Command("nsenter", "--net=/proc/self/fd/3", "nft", "list", "table", "inet", namespaces.NftTable)
			cmd.ExtraFiles = []*os.File{ns}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("nft list: %v\n%s", err, out)
			}
			return regexp.MustCompile(`counter packets \d+ bytes \d+`).ReplaceAllString(string(out), "counter")
		}
		if la, lb := show(a), show(b); la != lb {
			t.Errorf("%+v: netlink and nft text differ in the kernel:\n--- netlink\n%s--- nft text\n%s", p, la, lb)
		}
		doneA()
		doneB()
	}
}
