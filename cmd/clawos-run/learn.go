package main

import (
	"encoding/json"
	"fmt"
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

// observe turns a plan into a --learn or --complain one: the container
// stage allows everything (the runtime's init is not the agent), the agent
// stage reports to the supervisor (every call, or the calls the whitelist
// would not allow) and allows. It returns the supervisor and what will
// collect its reports.
func (l *launcher) observe(plan *confine.Plan) (*supervisor, *learn.Recording, *learn.Complaints, error) {
	arch := plan.Stages.Agent.Arch
	plan.Stages.Container.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Architectures: plan.Stages.Agent.Seccomp.Architectures, Flags: []specs.LinuxSeccompFlag{}}
	var rec *learn.Recording
	var comp *learn.Complaints
	sup := &supervisor{}
	if l.cfg.learn != "" {
		plan.Stages.Agent.Seccomp = learn.NotifyAll(arch)
		rec = learn.NewRecording(arch)
		sup.record = rec.Add
	} else {
		var err error
		if comp, err = learn.NewComplaints(arch, plan.AgentBPF); err != nil {
			return nil, nil, nil, err
		}
		plan.Stages.Agent.Seccomp = learn.Complaining(plan.Stages.Agent.Seccomp)
		sup.record = comp.Add
		if plan.Ports != nil {
			plan.Ports.Complain = true
		}
	}
	bpf, err := seccomp.Compile(plan.Stages.Agent.Seccomp)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("agent stage: %w", err)
	}
	plan.AgentBPF = bpf
	return sup, rec, comp, nil
}

// finishLearn writes what a --learn run recorded: a signed P1.2
// whitelist, merged with --merge's, validated before it is written
// (atomically).
func (l *launcher) finishLearn(sb *sandbox, status int) error {
	if status != 0 && !l.cfg.learnFailed {
		return &clawerr.Error{Code: clawerr.EPerm,
			Message: fmt.Sprintf("the agent exited with status %d: a whitelist learned from a failed run records the failure's path, not the agent's work; nothing was written to %s", status, l.cfg.learn),
			Hint:    "fix the run, or pass --learn-failed to write it anyway"}
	}
	now := time.Now()
	raw, err := sb.recording.Whitelist(now, learn.Target{Process: filepath.Base(sb.command[0]), Command: filepath.Base(sb.command[0])})
	if err != nil {
		return err
	}
	v, err := translate.NewValidator()
	if err != nil {
		return err
	}
	if l.cfg.merge != "" {
		old, _, err := confine.Load(l.cfg.merge, nil, translate.Options{}, l.log)
		if err != nil {
			return fmt.Errorf("--merge: %w", err)
		}
		learned, rep := v.Validate(raw, translate.Options{})
		if err := rep.Err(); err != nil {
			return fmt.Errorf("learned whitelist: %w", err)
		}
		var conflicts []learn.Conflict
		if raw, conflicts, err = learn.Merge(old, learned, now); err != nil {
			return err
		}
		for _, c := range conflicts {
			l.log.WithField("syscall", c.Syscall).Warn("merge: " + c.Reason)
		}
	}
	wl, rep := v.Validate(raw, translate.Options{})
	for _, d := range rep.Warnings() {
		l.log.WithField("path", d.Path).Warn(d.Message)
	}
	if err := rep.Err(); err != nil {
		return &clawerr.Error{Code: clawerr.EInternal, Message: "the learned whitelist does not validate", Err: err}
	}
	if err := atomicfile.WriteFile(l.cfg.learn, raw, 0o644); err != nil {
		return err
	}
	for k, n := range sb.recording.Foreign {
		l.log.WithField("call", k).Warnf("learn: %d calls through another ABI, not whitelisted", n)
	}
	l.log.WithField("syscalls", len(wl.Syscalls)).WithField("agent_status", status).Infof("learn: wrote %s", l.cfg.learn)
	return nil
}

// finishComplain prints the would-be violations and writes them as JSON.
func (l *launcher) finishComplain(sb *sandbox) error {
	vs := sb.complaints.Report()
	if sb.refused > 0 {
		vs = append(vs, learn.Violation{Syscall: "port_restriction", Verdict: "REJECT (nftables)", Count: sb.refused})
	}
	learn.Table(l.stderr, vs)
	b, err := json.MarshalIndent(struct {
		Whitelist  string            `json:"whitelist"`
		Command    []string          `json:"command"`
		Violations []learn.Violation `json:"violations"`
	}{l.cfg.whitelist, sb.command, vs}, "", "  ")
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "encode the complain report")
	}
	return atomicfile.WriteFile(l.cfg.report, append(b, '\n'), 0o644)
}
