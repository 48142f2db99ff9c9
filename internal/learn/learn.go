// Package learn turns what an agent really calls into a P1.2 whitelist:
// clawos-run --learn records every call through a seccomp user
// notification (package seccomp's Supervise), this package counts them,
// keeps the argument values the P1.2 conditions can express, proposes
// CONDITIONAL rules where the observations allow, writes the signed
// whitelist and merges scenario runs. It also keeps clawos-run
// --complain's report of would-be violations. See docs/learn.md.
package learn

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
)

// Recording counts the calls of one or more runs of an agent.
type Recording struct {
	Arch  translate.Arch
	Runs  int
	Calls map[string]*Stat
	// Foreign counts calls made through another ABI (int 0x80, x32) or
	// with numbers this architecture does not name: never whitelisted.
	Foreign map[string]int
	// Read reads the agent's memory for the socket addresses of network
	// calls (ReadMem); nil reads none.
	Read MemReader
	// Ephemeral is the port range the kernel assigns from
	// (ip_local_port_range): no port proposal names one of its ports.
	Ephemeral [2]int
}

// Stat is what was seen of one syscall.
type Stat struct {
	Count int
	// Values of the arguments the proposals look at, after their mask
	// (see watched), with how often each was seen.
	Values map[uint64]int
	// Dests are the socket addresses of a network call, with how often
	// each was seen (at most maxAddrs).
	Dests map[Dest]int
}

// watched are the arguments worth recording because a P1.2 condition can
// express a restriction on them: arg_index and the mask applied.
var watched = map[string]struct {
	arg  int
	mask uint64
}{
	"socket": {0, ^uint64(0)}, // address family
	"openat": {2, translate.ReadOnlyOpenMask},
	"clone":  {0, namespaceFlags},
}

// namespaceFlags are clone's flags that create namespaces.
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWTIME

// NewRecording starts a recording of one run on arch.
func NewRecording(arch translate.Arch) *Recording {
	return &Recording{Arch: arch, Runs: 1, Calls: map[string]*Stat{}, Foreign: map[string]int{}, Read: ReadMem, Ephemeral: ephemeralRange()}
}

// Add records one call.
func (r *Recording) Add(c seccomp.Call) {
	name := r.Arch.SyscallName(int(c.Nr))
	if c.Arch != r.Arch.Audit() || name == "" {
		r.Foreign[fmt.Sprintf("arch 0x%x nr %d", c.Arch, c.Nr)]++
		return
	}
	st := r.Calls[name]
	if st == nil {
		st = &Stat{Values: map[uint64]int{}}
		r.Calls[name] = st
	}
	st.Count++
	if w, ok := watched[name]; ok {
		st.Values[c.Args[w.arg]&w.mask]++
	}
	if portCalls[name] && r.Read != nil {
		for _, d := range callAddrs(r.Read, c, name) {
			if st.Dests == nil {
				st.Dests = map[Dest]int{}
			}
			if st.Dests[d] > 0 || len(st.Dests) < maxAddrs {
				st.Dests[d]++
			}
		}
	}
}

// Target describes the learned program in the whitelist's metadata.
type Target struct {
	Process string // metadata.target_process
	Command string // for notes
}

// Whitelist writes the recording as a signed P1.2 whitelist: one rule per
// syscall seen, ALLOW or a proposed CONDITIONAL, categorised, marked
// verified_by_strace (recorded by tracing) and, when the program made every
// call the tokio baseline adds to program start-up, tokio_required on
// those calls; its notes say how often each was seen.
func (r *Recording) Whitelist(now time.Time, t Target) ([]byte, error) {
	tokio, err := baselineSet(r.Arch, "tokio")
	if err != nil {
		return nil, err
	}
	start, err := baselineSet(r.Arch, "start")
	if err != nil {
		return nil, err
	}
	// A tokio program makes every call the tokio baseline adds to start
	// (what validation's tokio lint checks); only then are those calls
	// marked tokio_required.
	isTokio := true
	for n := range tokio {
		if !start[n] && r.Calls[n] == nil {
			isTokio = false
		}
	}
	id, err := uuid4()
	if err != nil {
		return nil, err
	}
	wl := &translate.Whitelist{SchemaVersion: "1.0.0", WhitelistID: id, CreatedAt: now.UTC().Format(time.RFC3339),
		CreatedBy: "Security Agent", Metadata: &translate.Metadata{TargetProcess: t.Process, Environment: "development", SecurityLevel: "strict"}}
	names := make([]string, 0, len(r.Calls))
	for n := range r.Calls {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, clawerr.New(clawerr.EProto, "nothing was recorded: the agent made no call")
	}
	yes := true
	for _, n := range names {
		st := r.Calls[n]
		rule := translate.Rule{Name: n, Permission: translate.Allow, Category: Category(n), VerifiedByStrace: &yes,
			Notes: seenNote(st.Count, r.Runs, t.Command)}
		if isTokio && tokio[n] && !start[n] { // what the tokio runtime adds to any program's start
			rule.TokioRequired = &yes
		}
		if c, note := propose(n, st); c != nil {
			rule.Permission, rule.Conditions = translate.Conditional, c
			rule.Notes += "; " + note
		} else if c, note := proposePorts(n, st, r.Ephemeral); note != "" {
			if c != nil {
				rule.Permission, rule.Conditions = translate.Conditional, c
			}
			rule.Notes += "; " + note
		}
		wl.Syscalls = append(wl.Syscalls, rule)
	}
	raw, err := translate.Encode(wl)
	if err != nil {
		return nil, err
	}
	return translate.Sign(raw)
}

func seenNote(count, runs int, cmd string) string {
	s := fmt.Sprintf("learned: seen %d time(s) in %d run(s)", count, runs)
	if cmd != "" {
		s += " of " + cmd
	}
	return s
}

// propose returns a condition that every observed call of name satisfies
// and that narrows it, with a note saying it is a proposal; nil if the
// observations allow none.
func propose(name string, st *Stat) (*translate.Conditions, string) {
	if len(st.Values) == 0 {
		return nil, ""
	}
	w := watched[name]
	switch name {
	case "socket":
		if len(st.Values) != 1 {
			return nil, ""
		}
		for fam := range st.Values {
			return &translate.Conditions{Description: fmt.Sprintf("proposal: address family %d only (the only one seen)", fam),
					ArgumentFilter: &translate.ArgumentFilter{ArgIndex: w.arg, Operator: "eq", Value: translate.NewArgValue(fam)}},
				"proposal: CONDITIONAL on the address family seen; review before promoting"
		}
	case "openat":
		if len(st.Values) == 1 && st.Values[unix.O_RDONLY] > 0 {
			mask := translate.NewArgValue(w.mask)
			return &translate.Conditions{Description: "proposal: read-only opens only (O_RDONLY without O_CREAT, O_TRUNC or O_TMPFILE: the only kind seen)",
					ArgumentFilter: &translate.ArgumentFilter{ArgIndex: w.arg, Operator: "masked_eq", Value: translate.NewArgValue(0), Mask: &mask}},
				"proposal: CONDITIONAL read-only; review before promoting"
		}
	case "clone":
		if len(st.Values) == 1 && st.Values[0] > 0 {
			mask := translate.NewArgValue(w.mask)
			return &translate.Conditions{Description: "proposal: no namespace flags (none seen)",
					ArgumentFilter: &translate.ArgumentFilter{ArgIndex: w.arg, Operator: "masked_eq", Value: translate.NewArgValue(0), Mask: &mask}},
				"proposal: CONDITIONAL without namespace flags; review before promoting"
		}
	}
	return nil, ""
}

// baselineSet is the set of calls a named baseline lists.
func baselineSet(arch translate.Arch, name string) (map[string]bool, error) {
	calls, err := translate.Baseline(arch, name)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, c := range calls {
		set[c.Name] = true
	}
	return set, nil
}

// uuid4 is a random RFC 4122 version 4 UUID, as P1.2's whitelist_id wants.
func uuid4() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", clawerr.Wrap(clawerr.EInternal, err, "whitelist id")
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// seenRe reads a learned note back, for merging.
var seenRe = regexp.MustCompile(`learned: seen (\d+) time\(s\) in (\d+) run\(s\)`)

// strictness orders permissions: a merge keeps the stricter rule.
var strictness = map[translate.Permission]int{translate.Allow: 0, translate.Conditional: 1, translate.Deny: 2}

// Conflict is one rule a merge had to choose.
type Conflict struct {
	Syscall string
	Kept    string // "existing" or "learned"
	Reason  string
}

// Merge unions an existing whitelist (a previous scenario, or a reviewed
// whitelist) with a learned one: calls of either are kept; for a call in
// both, equal rules add their counts, and different ones keep the stricter
// (DENY over CONDITIONAL over ALLOW; the existing one between two different
// conditions), saying so in the rule's notes and in the returned conflicts.
// The result keeps the existing whitelist's id and creation, is marked
// updated now, and is signed.
func Merge(existing, learned *translate.Whitelist, now time.Time) ([]byte, []Conflict, error) {
	out := *existing
	out.Syscalls = nil
	out.Signature = ""
	out.UpdatedAt, out.UpdatedBy = now.UTC().Format(time.RFC3339), "Security Agent"
	byName := map[string]translate.Rule{}
	for _, r := range learned.Syscalls {
		byName[r.Name] = r
	}
	var conflicts []Conflict
	seen := map[string]bool{}
	for _, e := range existing.Syscalls {
		seen[e.Name] = true
		l, ok := byName[e.Name]
		if !ok {
			out.Syscalls = append(out.Syscalls, e)
			continue
		}
		if e.Permission == l.Permission && sameConditions(e.Conditions, l.Conditions) {
			e.Notes = addCounts(e.Notes, l.Notes)
			out.Syscalls = append(out.Syscalls, e)
			continue
		}
		// Two scenarios' port proposals: the ports of both (a reviewed
		// port rule, not a proposal, is kept as it is below).
		if u, ok := unionPorts(e, l); ok {
			u.Notes = addCounts(e.Notes, l.Notes) + "; merge: ports of both scenarios"
			out.Syscalls = append(out.Syscalls, u)
			continue
		}
		kept, other, which := e, l, "existing"
		if strictness[l.Permission] > strictness[e.Permission] {
			kept, other, which = l, e, "learned"
		}
		reason := fmt.Sprintf("kept the %s rule (%s) over the %s", which, describe(kept), describe(other))
		kept.Notes = strings.TrimPrefix(kept.Notes+"; merge: "+reason, "; ")
		conflicts = append(conflicts, Conflict{Syscall: e.Name, Kept: which, Reason: reason})
		out.Syscalls = append(out.Syscalls, kept)
	}
	for _, l := range learned.Syscalls {
		if !seen[l.Name] {
			out.Syscalls = append(out.Syscalls, l)
		}
	}
	sort.SliceStable(out.Syscalls, func(i, j int) bool { return out.Syscalls[i].Name < out.Syscalls[j].Name })
	raw, err := translate.Encode(&out)
	if err != nil {
		return nil, nil, err
	}
	signed, err := translate.Sign(raw)
	return signed, conflicts, err
}

// unionPorts merges two learned port proposals of one call into one of
// the ports of both; ok is false unless both are proposals restricting
// ports alone.
func unionPorts(e, l translate.Rule) (translate.Rule, bool) {
	proposal := func(r translate.Rule) bool {
		c := r.Conditions
		return r.Permission == translate.Conditional && c != nil && c.PortRestriction != nil && c.ArgumentFilter == nil &&
			strings.HasPrefix(c.Description, "proposal:")
	}
	if !proposal(e) || !proposal(l) {
		return translate.Rule{}, false
	}
	set := map[int]bool{}
	for _, r := range []translate.Rule{e, l} {
		for _, p := range r.Conditions.PortRestriction.AllowedPorts {
			set[p] = true
		}
	}
	ports := make([]int, 0, len(set))
	for p := range set {
		ports = append(ports, p)
	}
	sort.Ints(ports)
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	u := e
	c := *e.Conditions
	c.PortRestriction = &translate.PortRestriction{AllowedPorts: ports}
	c.Description = "proposal: ports " + strings.Join(s, ", ") + " only (the ones seen in the merged runs)"
	u.Conditions = &c
	return u, true
}

func describe(r translate.Rule) string {
	if r.Permission == translate.Conditional && r.Conditions != nil {
		return "CONDITIONAL: " + r.Conditions.Description
	}
	return string(r.Permission)
}

func sameConditions(a, b *translate.Conditions) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, _ := translate.Encode(&translate.Whitelist{Syscalls: []translate.Rule{{Conditions: a}}})
	y, _ := translate.Encode(&translate.Whitelist{Syscalls: []translate.Rule{{Conditions: b}}})
	return string(x) == string(y)
}

// addCounts sums the learned counts of two notes (keeping a's other text).
func addCounts(a, b string) string {
	ma, mb := seenRe.FindStringSubmatch(a), seenRe.FindStringSubmatch(b)
	if ma == nil || mb == nil {
		return a
	}
	n := atoi(ma[1]) + atoi(mb[1])
	runs := atoi(ma[2]) + atoi(mb[2])
	return strings.Replace(a, ma[0], fmt.Sprintf("learned: seen %d time(s) in %d run(s)", n, runs), 1)
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
