package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/atomicfile"
	"github.com/clawos/clawos-security/internal/confine"
	"github.com/clawos/clawos-security/internal/learn"
	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
)

// supervisor receives the calls a --learn or --complain sandbox reports
// through clawos-init's seccomp listener.
type supervisor struct {
	record func(seccomp.Call)
	done   chan error
}

// listenerTimeout bounds the wait for clawos-init to load its filter.
const listenerTimeout = 10 * time.Second

// start takes the listener from the sandbox's process pid and answers its
// notifications until every process under the filter is gone. The first
// is clawos-init's learn.SyncCall, not the agent's: it is dropped.
func (s *supervisor) start(pid int) error {
	l, err := seccomp.TakeListener(pid, listenerTimeout)
	if err != nil {
		return err
	}
	s.done = make(chan error, 1)
	synced := false
	go func() {
		defer l.Close()
		s.done <- seccomp.Supervise(l, func(c seccomp.Call) {
			if !synced {
				synced = true
				return
			}
			s.record(c)
		})
	}()
	return nil
}

// wait returns when the supervisor has answered the last notification.
func (s *supervisor) wait() error {
	if s.done == nil {
		return nil
	}
	return <-s.done
}

// learnPlaceholder is the whitelist a --learn sandbox is planned with: its
// filters are replaced (see observe), only its shape is used.
func learnPlaceholder() *translate.Whitelist {
	return &translate.Whitelist{SchemaVersion: "1.0.0", WhitelistID: "00000000-0000-4000-8000-000000000000",
		CreatedBy: "Security Agent", Syscalls: []translate.Rule{{Name: "exit_group", Permission: translate.Allow}}}
}

// observation is what a learn or complain run adds to a plan: the
// supervisor that answers the agent's notifications, and what collects
// them (recording for learn, complaints for complain).
type observation struct {
	super      *supervisor
	recording  *learn.Recording
	complaints *learn.Complaints
}

// observe turns a plan into a learn (record) or complain one: the
// container stage allows everything (the runtime's init is not the agent),
// the agent stage reports to the supervisor (every call, or the calls the
// whitelist would not allow) and allows.
func observe(plan *confine.Plan, record bool) (*observation, error) {
	arch := plan.Stages.Agent.Arch
	plan.Stages.Container.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Architectures: plan.Stages.Agent.Seccomp.Architectures, Flags: []specs.LinuxSeccompFlag{}}
	o := &observation{super: &supervisor{}}
	if record {
		plan.Stages.Agent.Seccomp = learn.NotifyAll(arch)
		o.recording = learn.NewRecording(arch)
		o.super.record = o.recording.Add
	} else {
		var err error
		if o.complaints, err = learn.NewComplaints(arch, plan.AgentBPF); err != nil {
			return nil, err
		}
		plan.Stages.Agent.Seccomp = learn.Complaining(plan.Stages.Agent.Seccomp)
		if plan.Ports != nil {
			// The destinations the port rules would refuse, named: the
			// network calls report to the supervisor, which reads them.
			plan.Stages.Agent.Seccomp = learn.NotifyPortCalls(plan.Stages.Agent.Seccomp, arch)
			o.complaints.Ports = &learn.PortRules{Connect: plan.Ports.Connect, Bind: plan.Ports.Bind}
			o.complaints.Read = learn.ReadMem
		}
		o.super.record = o.complaints.Add
		if plan.Ports != nil {
			plan.Ports.Complain = true
		}
	}
	bpf, err := seccomp.Compile(plan.Stages.Agent.Seccomp)
	if err != nil {
		return nil, fmt.Errorf("agent stage: %w", err)
	}
	plan.AgentBPF = bpf
	return o, nil
}

// Finish writes what an observed run found, given the agent's exit
// status: a learn run's whitelist, a complain run's report (printed to
// out and written as JSON). It does nothing for an enforcing run.
func (s *Sandbox) Finish(status int, out io.Writer) error {
	switch {
	case s.plan.obs == nil:
		return nil
	case s.plan.obs.recording != nil:
		return s.finishLearn(status)
	default:
		return s.finishComplain(out)
	}
}

// finishLearn writes what a learn run recorded: a signed P1.2
// whitelist, merged with Merge's, validated before it is written
// (atomically).
func (s *Sandbox) finishLearn(status int) error {
	c, log := s.plan.cfg, s.plan.log
	if status != 0 && !c.LearnFailed {
		return &clawerr.Error{Code: clawerr.EPerm,
			Message: fmt.Sprintf("the agent exited with status %d: a whitelist learned from a failed run records the failure's path, not the agent's work; nothing was written to %s", status, c.Learn),
			Hint:    "fix the run, or pass --learn-failed to write it anyway"}
	}
	rec := s.plan.obs.recording
	now := time.Now()
	cmd := s.plan.Command
	raw, err := rec.Whitelist(now, learn.Target{Process: filepath.Base(cmd[0]), Command: filepath.Base(cmd[0])})
	if err != nil {
		return err
	}
	h := s.plan.host
	validate := func(name string, raw []byte) (*translate.Whitelist, []translate.Diagnostic, error) {
		res, err := h.Validate(raw, translate.Options{}, "")
		if err != nil {
			return nil, nil, err
		}
		if err := res.Err(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		wl, err := res.Entry.Decode()
		return wl, res.Entry.Warnings, err
	}
	if c.Merge != "" {
		oldRaw, err := translate.ReadFile(c.Merge, nil)
		if err != nil {
			return fmt.Errorf("--merge: %w", err)
		}
		old, _, err := validate(c.Merge, oldRaw)
		if err != nil {
			return fmt.Errorf("--merge: %w", err)
		}
		learned, _, err := validate("learned whitelist", raw)
		if err != nil {
			return err
		}
		var conflicts []learn.Conflict
		if raw, conflicts, err = learn.Merge(old, learned, now); err != nil {
			return err
		}
		for _, c := range conflicts {
			log.WithField("syscall", c.Syscall).Warn("merge: " + c.Reason)
		}
	}
	wl, warnings, err := validate("the learned whitelist", raw)
	for _, d := range warnings {
		log.WithField("path", d.Path).Warn(d.Message)
	}
	if err != nil {
		return &clawerr.Error{Code: clawerr.EInternal, Message: "the learned whitelist does not validate", Err: err}
	}
	if err := atomicfile.WriteFile(c.Learn, raw, 0o644); err != nil {
		return err
	}
	for k, n := range rec.Foreign {
		log.WithField("call", k).Warnf("learn: %d calls through another ABI, not whitelisted", n)
	}
	log.WithField("syscalls", len(wl.Syscalls)).WithField("agent_status", status).Infof("learn: wrote %s", c.Learn)
	return nil
}

// finishComplain prints the would-be violations and writes them as JSON.
func (s *Sandbox) finishComplain(out io.Writer) error {
	vs := s.plan.obs.complaints.Report()
	if s.refused > 0 {
		vs = append(vs, learn.Violation{Syscall: "port_restriction", Verdict: "REJECT (nftables)", Count: s.refused})
	}
	learn.Table(out, vs)
	b, err := json.MarshalIndent(struct {
		Whitelist  string            `json:"whitelist"`
		Command    []string          `json:"command"`
		Violations []learn.Violation `json:"violations"`
	}{s.plan.cfg.Whitelist, s.plan.Command, vs}, "", "  ")
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "encode the complain report")
	}
	return atomicfile.WriteFile(s.plan.cfg.Report, append(b, '\n'), 0o644)
}
