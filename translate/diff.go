package translate

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Change is one difference between two whitelists, for review before a
// whitelist is promoted.
type Change struct {
	Syscall string `json:"syscall"`
	// Kind is "added" (only in the second), "removed" (only in the
	// first) or "changed".
	Kind string `json:"kind"`
	From string `json:"from,omitempty"` // the first's rule, in words
	To   string `json:"to,omitempty"`   // the second's
	// Wider: the second allows more for this call than the first (an
	// added ALLOW or CONDITIONAL, DENY to ALLOW, a condition dropped or
	// changed), the part a reviewer must look at.
	Wider bool `json:"wider"`
}

// Diff lists what b allows that a does not, and the reverse, by syscall:
// added and removed calls and changed rules (permission, condition, DENY
// errno), in syscall order.
func Diff(a, b *Whitelist) []Change {
	ra, rb := rulesByName(a), rulesByName(b)
	var names []string
	for n := range ra {
		names = append(names, n)
	}
	for n := range rb {
		if _, ok := ra[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []Change
	for _, n := range names {
		x, inA := ra[n]
		y, inB := rb[n]
		switch {
		case !inA:
			out = append(out, Change{Syscall: n, Kind: "added", To: ruleWords(y), Wider: y.Permission != Deny})
		case !inB:
			out = append(out, Change{Syscall: n, Kind: "removed", From: ruleWords(x), Wider: x.Permission == Deny})
		case ruleWords(x) != ruleWords(y):
			out = append(out, Change{Syscall: n, Kind: "changed", From: ruleWords(x), To: ruleWords(y), Wider: wider(x, y)})
		}
	}
	return out
}

func rulesByName(wl *Whitelist) map[string]Rule {
	m := map[string]Rule{}
	for _, r := range wl.Syscalls {
		m[r.Name] = r
	}
	return m
}

// ruleWords is a rule's enforcement in words: permission, condition,
// errno; notes and categories do not count.
func ruleWords(r Rule) string {
	switch r.Permission {
	case Deny:
		if r.DenyErrno != "" {
			return "DENY " + r.DenyErrno
		}
		return "DENY"
	case Conditional:
		c := r.Conditions
		if c == nil {
			return "CONDITIONAL (no condition)"
		}
		s := "CONDITIONAL"
		if c.ArgumentFilter != nil {
			b, _ := json.Marshal(c.ArgumentFilter)
			s += " argument_filter " + string(b)
		}
		if c.PortRestriction != nil {
			s += fmt.Sprintf(" ports %v", c.PortRestriction.AllowedPorts)
		}
		return s
	}
	return string(r.Permission)
}

// wider tells whether y allows more than x for the same call: a looser
// permission, or a different condition (which a reviewer must check).
func wider(x, y Rule) bool {
	rank := map[Permission]int{Deny: 0, Conditional: 1, Allow: 2}
	if rank[y.Permission] != rank[x.Permission] {
		return rank[y.Permission] > rank[x.Permission]
	}
	return y.Permission == Conditional
}
