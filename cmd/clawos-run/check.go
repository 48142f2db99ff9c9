package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/clawos/clawos-security/internal/confine"
	"github.com/clawos/clawos-security/internal/platform"
)

// checkHost prints the platform table and the guarantees that hold here,
// and fails where a required mode cannot be met.
func checkHost(c *config, stdout, stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", progName, err)
		return exitFailure
	}
	r := platform.Probe(func() (bool, error) { return platform.IA32Self(self) })
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FEATURE\tTHIS HOST\tFOR")
	for _, row := range r.Rows() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", row[0], row[1], row[2])
	}
	fmt.Fprintln(tw, "\nGUARANTEE (docs/security.md)\tHOLDS\tWHY")
	for _, g := range r.Guarantees(os.Geteuid() == 0) {
		holds := "yes"
		if !g.Holds {
			holds = "no"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", g.What, holds, g.Why)
	}
	tw.Flush()
	status := 0
	if c.sb.AppArmor == confine.AppArmorRequired && !r.AppArmor {
		fmt.Fprintf(stderr, "%s: --apparmor required cannot be met: this kernel has no AppArmor\n", progName)
		status = exitFailure
	}
	if c.sb.Landlock == confine.LandlockRequired && r.Landlock == 0 {
		fmt.Fprintf(stderr, "%s: --landlock required cannot be met: this kernel has no Landlock\n", progName)
		status = exitFailure
	}
	return status
}
