package platform

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// DefaultGateway is the IPv4 default gateway of a /proc/net/route file:
// /proc/self/net/route for this process's network namespace,
// /proc/PID/net/route for another's. The file prints each address as the
// hexadecimal of its four bytes read as a little-endian word.
func DefaultGateway(routeFile string) (netip.Addr, error) {
	f, err := os.Open(routeFile)
	if err != nil {
		return netip.Addr{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 3 || fl[1] != "00000000" {
			continue
		}
		b, err := hex.DecodeString(fl[2])
		if err != nil || len(b) != 4 {
			continue
		}
		var a [4]byte
		binary.LittleEndian.PutUint32(a[:], binary.BigEndian.Uint32(b))
		if gw := netip.AddrFrom4(a); !gw.IsUnspecified() {
			return gw, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no default route in %s", routeFile)
}

// TunDevice is the device pasta opens in the namespace it serves.
const TunDevice = "/dev/net/tun"

// TunUsable reports whether this process may open dev (TunDevice) for
// reading and writing: a user's pasta opens it inside a user namespace the
// user owns, where the device's host owner and mode decide (Debian's udev
// makes it 0666; without udev it is often 0600 root).
func TunUsable(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return f.Close()
}
