package sandbox

import (
	"net/netip"
	"testing"
)

func TestEtcFiles(t *testing.T) {
	gw := netip.MustParseAddr("192.0.2.1")
	for _, c := range []struct {
		name, host, hosts, resolv string
	}{
		{"empty", "", "192.0.2.1\thost.clawos.internal\n", "nameserver 169.254.1.1\n"},
		{"no final newline", "127.0.0.1 localhost", "127.0.0.1 localhost\n192.0.2.1\thost.clawos.internal\n", "nameserver 169.254.1.1\n"},
		{"systemd-resolved's stub, search and options kept, comments dropped",
			"# generated\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n",
			"# generated\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n192.0.2.1\thost.clawos.internal\n",
			"nameserver 169.254.1.1\noptions edns0 trust-ad\nsearch corp.example\n"},
		{"every nameserver replaced", "nameserver 10.0.0.1\nnameserver 10.0.0.2\ndomain  lan\n",
			"nameserver 10.0.0.1\nnameserver 10.0.0.2\ndomain  lan\n192.0.2.1\thost.clawos.internal\n", "nameserver 169.254.1.1\ndomain lan\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := string(hostsFile([]byte(c.host), gw)); got != c.hosts {
				t.Errorf("hostsFile: %q, want %q", got, c.hosts)
			}
			if got := string(resolvFile([]byte(c.host))); got != c.resolv {
				t.Errorf("resolvFile: %q, want %q", got, c.resolv)
			}
		})
	}
}
