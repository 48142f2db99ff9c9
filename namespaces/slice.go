package namespaces

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	clawerr "github.com/clawos/clawos-security/errors"
)

// p15JSON is the P1.5 quota specification, unchanged (p15/SOURCE.md).
//
//go:embed p15/quotas.json
var p15JSON []byte

type p15File struct {
	SliceHierarchy struct {
		Slices []struct {
			Name   string            `json:"name"`
			Limits map[string]string `json:"resource_limits"`
		} `json:"slices"`
	} `json:"slice_hierarchy"`
}

// Slices lists the P1.5 slice names, sorted.
func Slices() ([]string, error) {
	f, err := loadP15()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range f.SliceHierarchy.Slices {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out, nil
}

func loadP15() (*p15File, error) {
	var f p15File
	if err := json.Unmarshal(p15JSON, &f); err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "embedded P1.5 quotas")
	}
	return &f, nil
}

// SliceResources maps a P1.5 slice ("agents.slice" or "agents") to OCI
// linux.resources: memory.max -> memory limit, memory.swap.max 0 -> swap
// equal to the memory limit (OCI's swap is memory plus swap), cpu.max ->
// quota and period, pids.max -> pids limit, cpu.weight -> cgroup v1 shares
// (runc's conversion, inverted), io.weight -> blkio weight. memory.oom.group
// has no cgroup v1 equivalent: it is set in linux.resources.unified only when
// cgroupV2 says the host's hierarchy is unified (runc refuses unified
// resources on a v1 or hybrid host).
func SliceResources(name string, cgroupV2 bool) (*specs.LinuxResources, error) {
	f, err := loadP15()
	if err != nil {
		return nil, err
	}
	want := strings.TrimSuffix(name, ".slice") + ".slice"
	var known []string
	for _, s := range f.SliceHierarchy.Slices {
		known = append(known, s.Name)
		if s.Name == want {
			r, err := resources(s.Limits, cgroupV2)
			if err != nil {
				return nil, fmt.Errorf("P1.5 slice %s: %w", s.Name, err)
			}
			return r, nil
		}
	}
	return nil, &clawerr.Error{Code: clawerr.ENoEnt, Message: fmt.Sprintf("no P1.5 slice %q", name),
		Hint: "known slices: " + strings.Join(known, ", ")}
}

func resources(l map[string]string, cgroupV2 bool) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	if v, ok := l["memory.max"]; ok && v != "max" {
		b, err := parseBytes(v)
		if err != nil {
			return nil, err
		}
		r.Memory = &specs.LinuxMemory{Limit: &b}
		if l["memory.swap.max"] == "0" {
			swap := b
			r.Memory.Swap = &swap
		}
	}
	if v, ok := l["cpu.max"]; ok && v != "max" {
		var quota int64
		var period uint64
		if _, err := fmt.Sscanf(v, "%d %d", &quota, &period); err != nil {
			return nil, clawerr.Wrap(clawerr.EProto, err, "cpu.max "+v)
		}
		r.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if v, ok := l["cpu.weight"]; ok {
		w, err := strconv.ParseUint(v, 10, 64)
		if err != nil || w < 1 || w > 10000 {
			return nil, clawerr.New(clawerr.EProto, "cpu.weight "+v)
		}
		shares := 2 + (w-1)*262142/9999
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		r.CPU.Shares = &shares
	}
	if v, ok := l["pids.max"]; ok && v != "max" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, clawerr.Wrap(clawerr.EProto, err, "pids.max "+v)
		}
		r.Pids = &specs.LinuxPids{Limit: &n}
	}
	if v, ok := l["io.weight"]; ok {
		w, err := strconv.ParseUint(v, 10, 16)
		if err != nil || w < 1 || w > 10000 {
			return nil, clawerr.New(clawerr.EProto, "io.weight "+v)
		}
		bw := uint16(10 + (w-1)*990/9999)
		r.BlockIO = &specs.LinuxBlockIO{Weight: &bw}
	}
	if v, ok := l["memory.oom.group"]; ok && cgroupV2 {
		r.Unified = map[string]string{"memory.oom.group": v}
	}
	return r, nil
}

// parseBytes reads "2G", "512M", "1024" (P1.5 memory values).
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult = 1 << 10
	case strings.HasSuffix(s, "M"):
		mult = 1 << 20
	case strings.HasSuffix(s, "G"):
		mult = 1 << 30
	case strings.HasSuffix(s, "T"):
		mult = 1 << 40
	}
	n, err := strconv.ParseInt(strings.TrimRight(s, "KMGTP"), 10, 64)
	if err != nil {
		return 0, clawerr.Wrap(clawerr.EProto, err, "memory value "+s)
	}
	return n * mult, nil
}

// ClampResources returns what an update (runc update, a kubelet resize)
// may set in a sandbox whose resources are bound (its P1.5 slice's, as
// applied at create): each memory, swap, pids and CPU limit of asked no
// looser than bound's, an unlimited value (absent in bound's place, zero
// or negative) replaced by bound's. It also says in words what it changed.
// A field bound does not limit passes as asked.
func ClampResources(asked, bound *specs.LinuxResources) (*specs.LinuxResources, []string) {
	if asked == nil || bound == nil {
		return asked, nil
	}
	out := *asked
	var changes []string
	clamp := func(name string, got **int64, limit *int64) {
		if limit == nil || *limit <= 0 || *got == nil {
			return
		}
		if **got <= 0 || **got > *limit {
			changes = append(changes, fmt.Sprintf("%s %d -> %d", name, **got, *limit))
			v := *limit
			*got = &v
		}
	}
	if asked.Memory != nil && bound.Memory != nil {
		m := *asked.Memory
		clamp("memory.limit", &m.Limit, bound.Memory.Limit)
		clamp("memory.swap", &m.Swap, bound.Memory.Swap)
		out.Memory = &m
	}
	if asked.Pids != nil && bound.Pids != nil {
		p := *asked.Pids
		clamp("pids.limit", &p.Limit, bound.Pids.Limit)
		out.Pids = &p
	}
	if asked.CPU != nil && bound.CPU != nil && bound.CPU.Quota != nil && *bound.CPU.Quota > 0 && bound.CPU.Period != nil && *bound.CPU.Period > 0 {
		c := *asked.CPU
		if c.Quota != nil || c.Period != nil {
			period := *bound.CPU.Period
			if c.Period != nil && *c.Period > 0 {
				period = *c.Period
			}
			// The quota the bound allows for this period.
			allowed := int64(float64(*bound.CPU.Quota) * float64(period) / float64(*bound.CPU.Period))
			if c.Quota == nil || *c.Quota <= 0 || *c.Quota > allowed {
				was := int64(-1)
				if c.Quota != nil {
					was = *c.Quota
				}
				changes = append(changes, fmt.Sprintf("cpu.quota %d -> %d (period %d)", was, allowed, period))
				c.Quota, c.Period = &allowed, &period
			}
		}
		out.CPU = &c
	}
	return &out, changes
}
