package version

import (
	"regexp"
	"testing"
)

func TestString(t *testing.T) {
	got := String("clawos-x")
	if !regexp.MustCompile(`^clawos-x \S+ commit \S+ go1\.\d+\S* libseccomp \d+\.\d+\.\d+ runc/libcontainer (v\S+|not linked)$`).MatchString(got) {
		t.Errorf("version %q", got)
	}
}
