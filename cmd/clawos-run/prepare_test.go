package main

import (
	"io"
	"testing"

	"github.com/sirupsen/logrus"
)

// BenchmarkPrepare measures everything clawos-run does before it runs the
// OCI runtime: validation, both stages, compilation, the spec.
func BenchmarkPrepare(b *testing.B) {
	c, err := parseFlags([]string{"--whitelist", "../../examples/ironclaw.whitelist.json", "--", "/usr/bin/true"}, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	l := &launcher{cfg: c, log: log, initPath: "../../bin/clawos-init"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := l.prepare(); err != nil {
			b.Fatal(err)
		}
	}
}
