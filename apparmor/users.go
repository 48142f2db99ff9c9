package apparmor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Users counts, per profile, the sandboxes that use it, so that a profile
// is loaded when its first user starts and removed from the kernel when
// its last one stops: one empty file Dir/NAME/HOLDER per user, changed
// under an exclusive lock on Dir/.lock. Profiles are named by a digest of
// their text, so users of one name use one text. A holder whose process
// died is released by whoever cleans its sandbox up (HeldBy).
type Users struct {
	Dir string
}

func (u Users) lock() (func(), error) {
	if err := os.MkdirAll(u.Dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(u.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// Acquire records holder as a user of profile name, calling load first
// when it has no user yet (then a load that fails records nothing).
func (u Users) Acquire(name, holder string, load func() error) error {
	unlock, err := u.lock()
	if err != nil {
		return fmt.Errorf("AppArmor profile users: %w", err)
	}
	defer unlock()
	dir := filepath.Join(u.Dir, name)
	if entries, _ := os.ReadDir(dir); len(entries) == 0 {
		if err := load(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("AppArmor profile users: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, holder), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("AppArmor profile users: %w", err)
	}
	return f.Close()
}

// Release removes holder from the users of profile name and calls unload
// when it was the last one.
func (u Users) Release(name, holder string, unload func() error) error {
	unlock, err := u.lock()
	if err != nil {
		return fmt.Errorf("AppArmor profile users: %w", err)
	}
	defer unlock()
	dir := filepath.Join(u.Dir, name)
	if err := os.Remove(filepath.Join(dir, holder)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("AppArmor profile users: %w", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		return nil
	}
	os.Remove(dir)
	return unload()
}

// HeldBy lists the profiles holder uses.
func (u Users) HeldBy(holder string) []string {
	matches, _ := filepath.Glob(filepath.Join(u.Dir, "*", holder))
	var out []string
	for _, m := range matches {
		out = append(out, filepath.Base(filepath.Dir(m)))
	}
	return out
}

// Unload removes the profile name from the kernel, through securityfs's
// .remove (what apparmor_parser -R does); a profile that is not loaded is
// no error.
func Unload(securityfs, name string) error {
	f, err := os.OpenFile(filepath.Join(securityfs, ".remove"), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("remove AppArmor profile %s: %w", name, err)
	}
	defer f.Close()
	if _, err := f.Write([]byte(name)); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove AppArmor profile %s: %w", name, err)
	}
	return nil
}
