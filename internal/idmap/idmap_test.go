package idmap

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// requireRoot skips a test that needs root, or fails it under
// CLAWOS_INTEGRATION=1 (make test), where a missing privilege is an error.
func requireRoot(t *testing.T) {
	t.Helper()
	switch {
	case os.Geteuid() == 0:
	case os.Getenv("CLAWOS_INTEGRATION") != "":
		t.Fatal("idmapped mounts need root, and CLAWOS_INTEGRATION=1 runs as root")
	default:
		t.Skip("idmapped mounts need root (CLAWOS_INTEGRATION=1 runs this as root)")
	}
}

// TestStage idmaps a directory as root: a file of uid 0 appears as the
// mapping's HostID through the staged mount, and Unstage leaves the files
// and removes only the mount point. (What a sandbox writes through it is
// the caller's on disk: TestRunWorkspace.)
func TestStage(t *testing.T) {
	requireRoot(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "mine"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "staged")
	m := Mapping{UID: 0, GID: 0, HostID: 100000}
	if err := Stage(src, target, m); err != nil {
		t.Fatalf("Stage: %v", err)
	}
	defer Unstage(target)
	fi, err := os.Stat(filepath.Join(target, "mine"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != m.HostID {
		t.Errorf("through the idmapped mount the file's owner is %d, want %d", uid, m.HostID)
	}
	if err := Unstage(target); err != nil {
		t.Fatalf("Unstage: %v", err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("the mount point is left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(src, "mine")); err != nil {
		t.Errorf("Unstage touched the source: %v", err)
	}
	if err := Unstage(target); err != nil {
		t.Errorf("a second Unstage: %v", err)
	}
}

// TestStageRefused checks that a filesystem that cannot be idmapped
// (overlayfs) is refused with a message that says so, and leaves nothing.
func TestStageRefused(t *testing.T) {
	requireRoot(t)
	d := t.TempDir()
	for _, s := range []string{"l", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(d, s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := filepath.Join(d, "m")
	if err := syscall.Mount("overlay", m, "overlay", 0, "lowerdir="+d+"/l,upperdir="+d+"/u,workdir="+d+"/w"); err != nil {
		t.Fatalf("mount an overlay: %v", err)
	}
	defer syscall.Unmount(m, syscall.MNT_DETACH)
	target := filepath.Join(d, "staged")
	err := Stage(m, target, Mapping{HostID: 100000})
	if err == nil || !strings.Contains(err.Error(), "cannot be an idmapped mount") {
		t.Errorf("an overlay was staged, or the error does not say why: %v", err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("a refused stage left %s: %v", target, err)
	}
}
