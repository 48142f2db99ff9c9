package translate_test

import (
	"reflect"
	"testing"

	"github.com/clawos/clawos-security/translate"
)

func TestDiff(t *testing.T) {
	rule := func(name string, p translate.Permission, arg int) translate.Rule {
		r := translate.Rule{Name: name, Permission: p}
		if p == translate.Conditional {
			r.Conditions = &translate.Conditions{Description: "d", ArgumentFilter: &translate.ArgumentFilter{ArgIndex: arg, Operator: "eq", Value: translate.NewArgValue(2)}}
		}
		return r
	}
	a := &translate.Whitelist{Syscalls: []translate.Rule{rule("read", translate.Allow, 0), rule("kill", translate.Deny, 0),
		rule("socket", translate.Conditional, 0), rule("gone", translate.Allow, 0), rule("same", translate.Conditional, 1)}}
	b := &translate.Whitelist{Syscalls: []translate.Rule{rule("read", translate.Allow, 0), rule("kill", translate.Allow, 0),
		rule("socket", translate.Conditional, 1), rule("new", translate.Allow, 0), rule("denied", translate.Deny, 0), rule("same", translate.Conditional, 1)}}
	got := translate.Diff(a, b)
	type short struct {
		name, kind string
		wider      bool
	}
	var s []short
	for _, c := range got {
		s = append(s, short{c.Syscall, c.Kind, c.Wider})
	}
	want := []short{{"denied", "added", false}, {"gone", "removed", false}, {"kill", "changed", true}, {"new", "added", true}, {"socket", "changed", true}}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %v\nwant %v", s, want)
	}
	if len(translate.Diff(a, a)) != 0 {
		t.Error("a whitelist differs from itself")
	}
}
