package atomicfile_test

import (
	stderrors "errors"
	"os"
	"path/filepath"
	"testing"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/atomicfile"
)

func TestWriteFile(t *testing.T) {
	for _, c := range []struct {
		name  string
		write func(string, []byte, os.FileMode) error
	}{{"WriteFile", atomicfile.WriteFile}, {"WriteState", atomicfile.WriteState}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f.json")
			for _, content := range []string{"first", "second, longer"} {
				if err := c.write(p, []byte(content), 0o640); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(p)
				if err != nil || string(b) != content {
					t.Fatalf("read back %q, %v", b, err)
				}
			}
			if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
				t.Errorf("mode %v", fi.Mode())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("temporary files left: %v", entries)
			}
			err := c.write(filepath.Join(dir, "missing", "f"), nil, 0o644)
			if !stderrors.Is(err, clawerr.ErrIO) {
				t.Errorf("write into a missing directory: %v", err)
			}
		})
	}
}
