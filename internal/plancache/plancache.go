// Package plancache keeps the whitelists clawos-policy validated, so that
// clawos-run validates a whitelist once per content and never links the
// JSON Schema library: an entry is keyed by the SHA-256 of the whitelist's
// bytes, the options validation depends on and the identity of the
// programs (a rebuilt clawos-run or clawos-policy misses), and holds the
// whitelist, its signature state and the validator's warnings. The cache
// directory belongs to its user and no one else may write to it or to a
// directory above it (but a sticky one); an entry is checked before use
// (format, key, its own digest), and a miss or a bad entry means the full
// validation, never a weaker one. The cache is bounded (MaxEntries): a
// store removes the entries used least recently beyond it, so that
// rebuilt programs and edited whitelists do not fill the disk.
package plancache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/internal/atomicfile"
	"github.com/clawos/clawos-security/translate"
)

// Format is the version of the entries' format; an entry of another is a
// miss.
const Format = 1

// Entry is one validated whitelist.
type Entry struct {
	Format int    `json:"format"`
	Key    string `json:"key"`
	// Whitelist is the document as it was validated.
	Whitelist json.RawMessage          `json:"whitelist"`
	Signature translate.SignatureState `json:"signature"`
	Warnings  []translate.Diagnostic   `json:"warnings,omitempty"`
}

// Decode is the entry's whitelist (decoded, not validated again).
func (e *Entry) Decode() (*translate.Whitelist, error) {
	wl := new(translate.Whitelist)
	if err := json.Unmarshal(e.Whitelist, wl); err != nil {
		return nil, fmt.Errorf("cached whitelist: %w", err)
	}
	return wl, nil
}

// Key is the cache key of raw validated with opts by programs of identity
// build: what validation depends on, and nothing else (the per-run exec
// address is not part of it).
func Key(raw []byte, opts translate.Options, build string) string {
	// The architecture validated for, as translation resolves it (empty:
	// this machine's; clawos-policy names it where clawos-run and the hook
	// leave it empty), so that their keys meet.
	h := sha256.New()
	fmt.Fprintf(h, "clawos-plan %d\x00%s\x00%s\x00%t\x00%s\x00%t\x00", Format, build, opts.TargetArch(), opts.RequireSignature,
		strings.Join(opts.Baselines, ","), opts.InitReaper)
	h.Write(raw)
	return hex.EncodeToString(h.Sum(nil))
}

// Build identifies the programs whose validation and use an entry is for:
// the device, inode, size and modification time of each (a rebuilt or
// replaced program is another identity), read with one stat each.
func Build(programs ...string) (string, error) {
	var b strings.Builder
	for _, p := range programs {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return "", fmt.Errorf("plan cache: identify %s: %w", p, err)
		}
		fmt.Fprintf(&b, "%d:%d:%d:%d.%d;", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	}
	return b.String(), nil
}

// DefaultDir is the cache of a user with effective uid euid: root's under
// /var/cache, another user's under $XDG_CACHE_HOME (or ~/.cache).
func DefaultDir(euid int) string {
	if euid == 0 {
		return "/var/cache/clawos/plans"
	}
	if d := os.Getenv("XDG_CACHE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "clawos", "plans")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "clawos", "plans")
	}
	return ""
}

// Cache is an opened cache directory.
type Cache struct {
	dir string
	max int // entries kept (MaxEntries)
}

// MaxEntries bounds a cache: when a store finds more entries, it removes
// the least recently used down to three quarters of it. A hit marks its
// entry used once a day (its modification time), so a whitelist in use
// is not the first to go; an entry removed is validated again at its next
// use, nothing more.
const MaxEntries = 512

// touchAfter is how old an entry's mark of use may be before a hit renews
// it (one write per entry and day, not one per start).
const touchAfter = 24 * time.Hour

// tmpAge is the age after which a temporary file of an interrupted store is
// removed.
const tmpAge = time.Hour

// Open creates dir (0700) if needed and refuses it unless it is a
// directory of euid's that no one else can write to, nor any directory
// above it but a sticky one owned by euid or root: whoever could write an
// entry could make clawos-run use a whitelist it never validated.
func Open(dir string, euid int) (*Cache, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("plan cache %q: not an absolute path", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("plan cache: %w", err)
	}
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		var st unix.Stat_t
		if err := unix.Lstat(d, &st); err != nil {
			return nil, fmt.Errorf("plan cache: %w", err)
		}
		switch {
		case st.Mode&unix.S_IFMT != unix.S_IFDIR:
			return nil, fmt.Errorf("plan cache: %s is not a directory", d)
		case int(st.Uid) != euid && st.Uid != 0:
			return nil, fmt.Errorf("plan cache: %s belongs to uid %d, neither the caller nor root", d, st.Uid)
		case d == filepath.Clean(dir) && (int(st.Uid) != euid || st.Mode&0o022 != 0):
			return nil, fmt.Errorf("plan cache: %s must be the caller's and writable by it alone (mode %o)", d, st.Mode&0o777)
		case st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0:
			return nil, fmt.Errorf("plan cache: %s is writable by others (mode %o)", d, st.Mode&0o777)
		}
		if d == "/" {
			return &Cache{dir: dir, max: MaxEntries}, nil
		}
	}
}

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// file is an entry as stored: the entry and the SHA-256 of its encoding.
type file struct {
	Digest string          `json:"digest"`
	Entry  json.RawMessage `json:"entry"`
}

func (c *Cache) path(key string) string { return filepath.Join(c.dir, key+".json") }

// Get returns the entry of key; nil when there is none or it does not
// verify (wrong format, key or digest, not a regular file of the cache's
// owner), which is a miss.
func (c *Cache) Get(key string) *Entry {
	if len(key) != 64 || strings.Trim(key, "0123456789abcdef") != "" {
		return nil
	}
	f, err := os.OpenFile(c.path(key), os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o022 != 0 || st.Size > 8<<20 {
		return nil
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil
	}
	var stored file
	if json.Unmarshal(b, &stored) != nil {
		return nil
	}
	sum := sha256.Sum256(stored.Entry)
	if hex.EncodeToString(sum[:]) != stored.Digest {
		return nil
	}
	var e Entry
	if json.Unmarshal(stored.Entry, &e) != nil || e.Format != Format || e.Key != key {
		return nil
	}
	if now := time.Now(); now.Sub(time.Unix(st.Mtim.Unix())) > touchAfter {
		os.Chtimes(c.path(key), now, now) // best effort: a missed mark only ages the entry
	}
	return &e
}

// Put stores e under its key, atomically.
func (c *Cache) Put(e *Entry) error {
	if e.Format != Format || len(e.Key) != 64 {
		return errors.New("plan cache: not an entry of this format")
	}
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("plan cache: %w", err)
	}
	sum := sha256.Sum256(body)
	b, err := json.Marshal(file{Digest: hex.EncodeToString(sum[:]), Entry: body})
	if err != nil {
		return fmt.Errorf("plan cache: %w", err)
	}
	if err := atomicfile.WriteFile(c.path(e.Key), b, 0o600); err != nil {
		return err
	}
	c.prune()
	return nil
}

// prune removes the least recently used entries down to three quarters of
// c.max when there are more than c.max, and what interrupted stores left.
// It runs after a store (a miss, which validated anyway), never on a hit.
func (c *Cache) prune() {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	type used struct {
		name string
		at   time.Time
	}
	var entries []used
	for _, d := range ents {
		name := d.Name()
		info, err := d.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		switch {
		case strings.HasPrefix(name, ".") && strings.Contains(name, ".json.tmp-"):
			if time.Since(info.ModTime()) > tmpAge {
				os.Remove(filepath.Join(c.dir, name))
			}
		case strings.HasSuffix(name, ".json"):
			entries = append(entries, used{name, info.ModTime()})
		}
	}
	if len(entries) <= c.max {
		return
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].at.Before(entries[j].at) })
	for _, e := range entries[:len(entries)-c.max*3/4] {
		os.Remove(filepath.Join(c.dir, e.name))
	}
}

// Result is what clawos-policy compile --plan prints: the entry of a valid
// whitelist, or the errors of an invalid one (with its signature state,
// for audit records).
type Result struct {
	Entry     *Entry                   `json:"entry,omitempty"`
	Invalid   []translate.Diagnostic   `json:"invalid,omitempty"`
	Signature translate.SignatureState `json:"signature,omitempty"`
}

// Validated is the result of validating raw (key is its cache key): the
// entry when rep has no error.
func Validated(key string, raw []byte, rep translate.Report) Result {
	if len(rep.Errors()) > 0 {
		return Result{Invalid: rep.Errors(), Signature: rep.Signature}
	}
	return Result{Entry: &Entry{Format: Format, Key: key, Whitelist: json.RawMessage(raw), Signature: rep.Signature, Warnings: rep.Warnings()}}
}

// Err is the refusal of an invalid result (translate.InvalidError), nil
// for a valid one.
func (r Result) Err() error {
	if r.Entry != nil {
		return nil
	}
	if len(r.Invalid) == 0 {
		return errors.New("plan cache: an empty result")
	}
	return &translate.InvalidError{Diagnostics: r.Invalid}
}

// Consumers are the programs that look entries up, each with the
// clawos-policy installed beside it: clawos-run and clawos-hook.
var Consumers = []string{"clawos-run", "clawos-hook"}

// Identities are the build identities under which entries validated by
// the clawos-policy installed in dir are found: one per consumer installed
// beside it (an entry stored under each is found by each), none when no
// consumer is there.
func Identities(dir string) []string {
	var out []string
	for _, c := range Consumers {
		if b, err := Build(filepath.Join(dir, c), filepath.Join(dir, "clawos-policy")); err == nil {
			out = append(out, b)
		}
	}
	return out
}
