package platform

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDefaultGateway reads the default route of a /proc/net/route file,
// skipping a default route without a gateway; a file without one is an
// error.
func TestDefaultGateway(t *testing.T) {
	dir := t.TempDir()
	const head = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	for _, c := range []struct {
		name, body, want string
	}{
		{"gateway", head + "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\neth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n", "192.0.2.1"},
		{"none", head + "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n", ""},
		{"default without a gateway", head + "wg0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n", ""},
	} {
		p := filepath.Join(dir, c.name)
		os.WriteFile(p, []byte(c.body), 0o644)
		gw, err := DefaultGateway(p)
		if c.want == "" {
			if err == nil {
				t.Errorf("%s: %v, want an error", c.name, gw)
			}
			continue
		}
		if err != nil || gw.String() != c.want {
			t.Errorf("%s: %v %v, want %s", c.name, gw, err, c.want)
		}
	}
}
