package platform

import (
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestClassifyIA32(t *testing.T) {
	exited := func(code int) syscall.WaitStatus { return syscall.WaitStatus(code << 8) }
	signaled := func(s syscall.Signal) syscall.WaitStatus { return syscall.WaitStatus(s) }
	for _, c := range []struct {
		name    string
		ws      syscall.WaitStatus
		has     bool
		wantErr bool
	}{
		{"delivered", exited(0), true, false},
		{"refused by the platform", signaled(unix.SIGSEGV), false, false},
		{"a crash of another kind is no answer", signaled(unix.SIGBUS), false, true},
		{"a seccomp kill is no answer (the probe runs unconfined)", signaled(unix.SIGSYS), false, true},
		{"an errno is no answer", exited(2), false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			has, err := ClassifyIA32(c.ws)
			if has != c.has || (err != nil) != c.wantErr {
				t.Errorf("ClassifyIA32(%#x) = %v, %v; want %v, error %v", c.ws, has, err, c.has, c.wantErr)
			}
		})
	}
}
