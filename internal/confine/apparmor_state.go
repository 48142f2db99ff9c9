package confine

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/clawos/clawos-security/apparmor"
	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/atomicfile"
)

// DefaultAppArmorState is where the users of every AppArmor profile
// ClawOS loads are counted, for clawos-run and clawos-hook alike. It is
// one directory for the whole system because the kernel's profiles are
// the whole system's: removing a profile that another sandbox still uses
// would leave that sandbox's tasks unconfined (the kernel moves them to
// the unconfined profile), so a count kept per program or per state
// directory would fail open.
const DefaultAppArmorState = "/run/clawos/apparmor"

// AppArmorState counts the users of loaded profiles (Dir/users, see
// apparmor.Users) and keeps the text of each profile the hook generated
// (Dir/profiles/NAME, the owner's alone), so that a later stage can load
// it again when its last other user removed it meanwhile.
type AppArmorState struct {
	Dir string
}

// SystemAppArmor is the system's AppArmorState (DefaultAppArmorState),
// the one every program of ClawOS counts profile users in.
func SystemAppArmor() AppArmorState { return AppArmorState{Dir: DefaultAppArmorState} }

// profileName tells whether name can name a file here: [A-Za-z0-9] then
// up to 200 of [A-Za-z0-9._-] (ours are clawos-<whitelist>-<digest> or a
// P1.6 preset's name). No regexp: a bounded repeat compiles into a
// program of its length, at every start of every program that links this.
func profileName(name string) bool {
	if name == "" || len(name) > 201 {
		return false
	}
	for i, c := range []byte(name) {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

func (s AppArmorState) users() apparmor.Users {
	return apparmor.Users{Dir: filepath.Join(s.Dir, "users")}
}

func (s AppArmorState) textPath(name string) (string, error) {
	if !profileName(name) {
		return "", &clawerr.Error{Code: clawerr.EProto, Path: "process.apparmorProfile", Message: fmt.Sprintf("%q is not a profile name of ClawOS's", name)}
	}
	return filepath.Join(s.Dir, "profiles", name), nil
}

// Hold records holder as a user of profile p, loading it into the kernel
// when it has no user yet.
func (s AppArmorState) Hold(p *AppArmorProfile, holder string) error {
	return s.users().Acquire(p.Name, holder, func() error { return LoadAppArmor(p) })
}

// Save keeps p's text for HoldSaved: the hook's create-time stage, which
// does not know the container's id yet, saves and loads it.
func (s AppArmorState) Save(p *AppArmorProfile) error {
	path, err := s.textPath(p.Name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "AppArmor profile texts")
	}
	return atomicfile.WriteFile(path, []byte(p.Text), 0o600)
}

// HoldSaved records holder as a user of the saved profile name, loading
// its saved text when it has no user (another container's stop may have
// removed it since Save). It reports false, holding nothing, for a name
// that Save never kept: a profile that is not ClawOS's (an engine's
// default).
func (s AppArmorState) HoldSaved(name, holder string, load func(*AppArmorProfile) error) (bool, error) {
	path, err := s.textPath(name)
	if err != nil {
		return false, nil
	}
	text, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, clawerr.Wrap(clawerr.EIO, err, "read the saved AppArmor profile")
	}
	p := &AppArmorProfile{Name: name, Text: string(text)}
	return true, s.users().Acquire(name, holder, func() error { return load(p) })
}

// Release ends holder's use of profile name, removing it from the kernel
// (through unload) after its last user.
func (s AppArmorState) Release(name, holder string, unload func(name string) error) error {
	return s.users().Release(name, holder, func() error { return unload(name) })
}

// HeldBy lists the profiles holder uses (a killed run's, for its cleanup).
func (s AppArmorState) HeldBy(holder string) []string { return s.users().HeldBy(holder) }

// UnloadAppArmor removes profile name from the kernel.
func UnloadAppArmor(name string) error { return apparmor.Unload(AppArmorFS, name) }
