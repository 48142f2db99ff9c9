package errors_test

import (
	"encoding/json"
	stderrors "errors"
	"fmt"
	"syscall"
	"testing"

	clawerr "github.com/clawos/clawos-security/errors"
)

// TestTable walks every code against the P1.7 table of shared/spec/README.md.
func TestTable(t *testing.T) {
	want := []struct {
		code  clawerr.Code
		name  string
		errno syscall.Errno // 0: none
		exit  int
	}{
		{0, "SUCCESS", 0, 0},
		{1, "EAGAIN", 11, 11},
		{2, "EIO", 5, 12},
		{3, "ENOENT", 2, 13},
		{4, "EPERM", 1, 14},
		{5, "EPROTO", 71, 15},
		{6, "ETIMEOUT", 110, 16},
		{7, "EINTERNAL", 0, 17},
		{8, "EPANIC", 0, 18},
	}
	known := clawerr.KnownCodes()
	if len(known) != len(want) {
		t.Fatalf("KnownCodes() has %d codes, P1.7 has %d", len(known), len(want))
	}
	for i, w := range want {
		c := known[i]
		if c != w.code || c.String() != w.name {
			t.Errorf("code %d: got %d %s, want %d %s", i, c, c, w.code, w.name)
		}
		errno, ok := c.Errno()
		if ok != (w.errno != 0) || errno != w.errno {
			t.Errorf("%s: Errno() = %d,%v, want %d", c, errno, ok, w.errno)
		}
		if c.ExitStatus() != w.exit {
			t.Errorf("%s: ExitStatus() = %d, want %d", c, c.ExitStatus(), w.exit)
		}
		if c.Description() == "" {
			t.Errorf("%s has no description", c)
		}
		if p, err := clawerr.ParseCode(w.name); err != nil || p != c {
			t.Errorf("ParseCode(%q) = %v, %v", w.name, p, err)
		}
	}
	if _, err := clawerr.ParseCode("ENOPE"); err == nil {
		t.Error("ParseCode accepted an unknown name")
	}
	if clawerr.Code(9).Valid() || clawerr.Code(9).ExitStatus() != 1 {
		t.Error("code 9 must be invalid and exit 1")
	}
}

func TestErrorChain(t *testing.T) {
	cause := syscall.ENOENT
	e := &clawerr.Error{Code: clawerr.ENoEnt, Path: "syscalls[3].name", Message: "unknown syscall", Hint: "did you mean recvfrom?", Err: cause}
	wrapped := fmt.Errorf("load whitelist: %w", e)

	if !stderrors.Is(wrapped, clawerr.ErrNotFound) {
		t.Error("errors.Is(wrapped, ErrNotFound) = false")
	}
	if stderrors.Is(wrapped, clawerr.ErrPerm) {
		t.Error("an ENOENT error matched ErrPerm")
	}
	if !stderrors.Is(wrapped, syscall.ENOENT) {
		t.Error("the cause is not reachable")
	}
	var got *clawerr.Error
	if !stderrors.As(wrapped, &got) || got.Path != "syscalls[3].name" {
		t.Errorf("errors.As lost the path: %+v", got)
	}
	if want := "syscalls[3].name: unknown syscall: no such file or directory (did you mean recvfrom?)"; e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
	if clawerr.CodeOf(wrapped) != clawerr.ENoEnt || clawerr.CodeOf(nil) != clawerr.Success ||
		clawerr.CodeOf(stderrors.New("plain")) != clawerr.EInternal {
		t.Error("CodeOf classifies wrongly")
	}
	// Two distinct non-sentinel errors with one code do not match each other.
	if stderrors.Is(e, &clawerr.Error{Code: clawerr.ENoEnt}) {
		t.Error("a non-sentinel target matched")
	}
}

func TestPayload(t *testing.T) {
	tests := []struct {
		err      error
		wantJSON string
	}{
		{
			err:      &clawerr.Error{Code: clawerr.EPerm, Path: "signature", Message: "signature does not match"},
			wantJSON: `{"error_code":4,"error_message":"signature: signature does not match","component":"clawos-policy","severity":"error","context":{"path":"signature"}}`,
		},
		{
			err:      clawerr.New(clawerr.EPanic, "rollback"),
			wantJSON: `{"error_code":8,"error_message":"rollback","component":"clawos-policy","severity":"critical"}`,
		},
		{
			err:      stderrors.New("boom"),
			wantJSON: `{"error_code":7,"error_message":"boom","component":"clawos-policy","severity":"error"}`,
		},
	}
	for _, tt := range tests {
		b, err := json.Marshal(clawerr.PayloadOf("clawos-policy", tt.err))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.wantJSON {
			t.Errorf("payload\n got %s\nwant %s", b, tt.wantJSON)
		}
		var back clawerr.Payload
		if err := json.Unmarshal(b, &back); err != nil || back.ErrorCode != clawerr.CodeOf(tt.err) {
			t.Errorf("round trip: %+v, %v", back, err)
		}
	}
	var p clawerr.Payload
	if err := json.Unmarshal([]byte(`{"error_message":"x"}`), &p); !stderrors.Is(err, clawerr.ErrProto) {
		t.Errorf("payload without error_code: %v", err)
	}
}

// TestCodeText: a code written as its name (a diagnostic in JSON) reads
// back; an unknown name does not.
func TestCodeText(t *testing.T) {
	for _, c := range clawerr.KnownCodes() {
		b, err := json.Marshal(struct{ C clawerr.Code }{c})
		if err != nil {
			t.Fatal(err)
		}
		var back struct{ C clawerr.Code }
		if err := json.Unmarshal(b, &back); err != nil || back.C != c {
			t.Errorf("%v: %s read back as %v (%v)", c, b, back.C, err)
		}
	}
	var back struct{ C clawerr.Code }
	if err := json.Unmarshal([]byte(`{"C":"EWHAT"}`), &back); err == nil {
		t.Error("an unknown code name was read")
	}
}
