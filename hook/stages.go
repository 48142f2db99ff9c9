package hook

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unicode/utf8"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/atomicfile"
	"github.com/clawos/clawos-security/internal/confine"
	"github.com/clawos/clawos-security/internal/killlog"
	"github.com/clawos/clawos-security/internal/runcargs"
	"github.com/clawos/clawos-security/namespaces"
	"github.com/clawos/clawos-security/translate"
)

// Decisions in audit records.
const (
	DecisionApplied     = "applied"     // precreate, create: the config now carries the whitelist
	DecisionPassthrough = "passthrough" // no whitelist annotation: untouched
	DecisionAllowed     = "allowed"     // prestart: checked, port rules installed
	DecisionRefused     = "refused"     // the container must not start
	DecisionCleaned     = "cleaned"     // poststop
	DecisionFailed      = "failed"      // the runtime wrapper's runc call failed after the confinement was applied
)

// ReadState reads the OCI state a runtime passes to prestart, createRuntime
// and poststop hooks on stdin.
func ReadState(r io.Reader) (*specs.State, error) {
	var st specs.State
	if err := json.NewDecoder(io.LimitReader(r, runcargs.MaxConfig)).Decode(&st); err != nil {
		return nil, &clawerr.Error{Code: clawerr.EProto, Message: "standard input is not an OCI state", Err: err}
	}
	if st.ID == "" || st.Bundle == "" {
		return nil, &clawerr.Error{Code: clawerr.EProto, Path: "id", Message: "the OCI state has no id or bundle"}
	}
	return &st, nil
}

// ReadBundleConfig reads bundle/config.json (runcargs.ReadConfig).
func ReadBundleConfig(bundle string) (*specs.Spec, error) { return runcargs.ReadConfig(bundle) }

// Prestart checks that the container about to start carries the profile
// its whitelist demands, and installs the port rules in its network
// namespace. Any failure refuses the start: the whitelist is missing,
// invalid or its signature does not match; the config's filter, its
// clawos-init command line or its annotations differ from what the
// whitelist translates to; port rules are needed but the container shares
// the host's network namespace. A container without the annotation (and
// without our marks) passes untouched.
func Prestart(st *specs.State, cfg Config, log logrus.FieldLogger) (*Outcome, error) {
	spec, err := ReadBundleConfig(st.Bundle)
	if err != nil {
		return nil, err
	}
	req := runcargs.Requested(spec.Annotations)
	name := req.Whitelist
	if err := refusal(spec); err != nil {
		return &Outcome{Whitelist: name}, err
	}
	if err := sandboxMarker(req, cfg); err != nil {
		return &Outcome{Whitelist: name}, err
	}
	if req.Sandbox && cfg.CRI && spec.Annotations[confine.AnnotationAgentDigest] == "" {
		return nil, nil // a CRI pod's sandbox, passed through at create
	}
	if name == "" {
		if spec.Annotations[confine.AnnotationAgentDigest] != "" {
			return &Outcome{}, &clawerr.Error{Code: clawerr.EPerm, Path: "annotations." + AnnotationWhitelist,
				Message: "the config carries a ClawOS profile but no whitelist annotation; it cannot be checked"}
		}
		return nil, nil
	}
	out := &Outcome{Whitelist: name}
	runtime := spec.Annotations[confine.AnnotationRuntime]
	if runtime == "" {
		runtime = cfg.Runtime
	}
	plan, err := planFor(spec, req, runtime, cfg, out, log)
	if err != nil {
		return out, err
	}
	return out, created(st, spec, plan, out, cfg, nil)
}

// created is the createRuntime stage's work on a container the runtime has
// created, its process not started: the config carries plan, the runtime
// made no namespace of the host's, the port rules are installed in its
// network namespace, its AppArmor profile held, the state record for
// poststop written. Prestart runs it as runc's hook; the wrapper runs it
// itself after runc's create (WrapCreate), with the plan it has just made
// and, for a pod's network namespace, the port rules it installed there
// while runc created the container (early, else nil). A table installed in
// a joined namespace is removed again if the stage fails.
func created(st *specs.State, spec *specs.Spec, plan *confine.Plan, out *Outcome, cfg Config, early *earlyPorts) (err error) {
	joined := netnsPath(spec)
	if plan.Ports != nil && joined != "" {
		defer func() {
			if err == nil {
				return
			}
			var rerr error
			if early != nil {
				rerr = early.remove()
			} else {
				rerr = removeTable(record{NetNS: joined, Table: portTable(st.ID)})
			}
			err = withRemoval(err, rerr)
		}()
	}
	if err := carries(spec, plan); err != nil {
		return err
	}
	// What the runtime actually made: no namespace of the host's, joined or
	// inherited (hostPID and hostIPC pods join the sandbox's, the host's).
	if st.Pid > 0 {
		if err := namespaces.ProcessHostNamespaces(st.Pid, "/proc/self/ns"); err != nil {
			return err
		}
	}
	out.Digest = spec.Annotations[translate.AnnotationProfileDigest]
	rec := record{ID: st.ID, Whitelist: out.Whitelist, WhitelistID: out.WhitelistID, Digest: out.Digest, Pid: st.Pid, Started: time.Now()}
	if plan.Ports != nil {
		if joined != "" {
			// A pod's network namespace, shared with its other
			// containers: a table of our own, removed by poststop.
			plan.Ports.Table = portTable(st.ID)
			rec.NetNS, rec.Table = joined, plan.Ports.Table
		}
		if early != nil {
			err = early.wait(st.Pid)
		} else {
			err = installPorts(st.Pid, plan.Ports)
		}
		if err != nil {
			return err
		}
	}
	// The container's AppArmor profile, when Apply generated it: counted
	// as used until poststop, so that no other container's stop removes
	// it from the kernel while this one runs.
	if rec.AppArmor, err = holdAppArmor(confine.SystemAppArmor(), spec, st.ID, confine.LoadAppArmor); err != nil {
		return err
	}
	// The kernel's audit thread, seen asleep before the container's process
	// runs and after this stage's own audit records (a profile's load, port
	// rules where audit is on): poststop reads the kernel log only if it
	// has been woken since.
	if m, ok := killlog.MarkAudit(); ok {
		rec.Audit = &m
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "encode state record")
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "create the state directory")
	}
	if err := syncQuickFile(cfg, spec, rec); err != nil {
		return err
	}
	if err := atomicfile.WriteState(statePath(cfg, st.ID), b, 0o600); err != nil {
		return err
	}
	return nil
}

// record is what prestart leaves for poststop.
type record struct {
	ID          string `json:"id"`
	Whitelist   string `json:"whitelist"`
	WhitelistID string `json:"whitelist_id"`
	Digest      string `json:"profile_digest"`
	Pid         int    `json:"pid"`
	// Started is when prestart ran: a seccomp kill of Pid logged before
	// is another process's.
	Started time.Time `json:"started"`
	// NetNS and Table: the nftables table installed in a network
	// namespace the container joined (and that outlives it).
	NetNS string `json:"netns,omitempty"`
	Table string `json:"nft_table,omitempty"`
	// AppArmor is the generated profile the container holds.
	AppArmor string `json:"apparmor,omitempty"`
	// Audit is the kernel's audit thread as createRuntime left it, nil
	// where it was not seen asleep.
	Audit *killlog.Mark `json:"audit_mark,omitempty"`
}

// appArmorHolder is container id's name among a profile's users.
func appArmorHolder(id string) string {
	if !runcargs.ValidID(id) || len(id) > 200 {
		id = fmt.Sprintf("%x", sha256.Sum256([]byte(id)))
	}
	return "hook-" + id
}

// holdAppArmor counts container id as a user of the profile spec names,
// when Apply generated and saved it (an engine's own profile is none of
// ours), loading it again if it has no user; it returns the name held, ""
// for none.
func holdAppArmor(state confine.AppArmorState, spec *specs.Spec, id string, load func(*confine.AppArmorProfile) error) (string, error) {
	if spec.Process == nil || spec.Process.ApparmorProfile == "" {
		return "", nil
	}
	name := spec.Process.ApparmorProfile
	held, err := state.HoldSaved(name, appArmorHolder(id), load)
	if err != nil || !held {
		return "", err
	}
	return name, nil
}

// netnsPath is the network namespace spec joins, "" when it creates its
// own (or has none).
func netnsPath(spec *specs.Spec) string {
	n, _ := namespaceOf(spec, specs.NetworkNamespace)
	return n.Path
}

// portTable names the nftables table of container id in a shared network
// namespace.
func portTable(id string) string {
	if !runcargs.ValidID(id) || len(id) > 200 {
		id = fmt.Sprintf("%x", sha256.Sum256([]byte(id)))
	}
	return namespaces.NftTable + "-" + id
}

func statePath(cfg Config, id string) string {
	if !runcargs.ValidID(id) {
		id = fmt.Sprintf("invalid-%x", id)
	}
	return filepath.Join(cfg.StateDir, id+".json")
}

// carries checks that spec is what Apply or the wrapper makes of plan: the
// same container-level filter (by digest in its annotation, and in the
// config for the runtime to load or compiled on clawos-init's command line,
// or both), the same agent filter on clawos-init's command line,
// no_new_privs.
func carries(spec *specs.Spec, plan *confine.Plan) error {
	refuse := func(path, msg string) error {
		return &clawerr.Error{Code: clawerr.EPerm, Path: path,
			Message: "the container's config does not carry the profile its whitelist demands: " + msg,
			Hint:    "create the container through clawos-hook precreate or the clawos runtime wrapper"}
	}
	want, err := translate.ProfileDigest(plan.Stages.Container.Seccomp)
	if err != nil {
		return err
	}
	initFilter, initLoads := initContainerFilter(spec)
	if spec.Linux == nil || (spec.Linux.Seccomp == nil && !initLoads) {
		return refuse("linux.seccomp", "it has no seccomp filter")
	}
	if spec.Linux.Seccomp != nil {
		got, err := translate.ProfileDigest(spec.Linux.Seccomp)
		if err != nil {
			return err
		}
		if got != want {
			return refuse("linux.seccomp", "its filter differs (digest "+got+", want "+want+")")
		}
	}
	if got := spec.Annotations[translate.AnnotationProfileDigest]; got != want {
		return refuse("annotations."+translate.AnnotationProfileDigest, "its filter differs (digest "+got+", want "+want+")")
	}
	if initLoads {
		compiled, err := plan.ContainerFilter()
		if err != nil {
			return err
		}
		if initFilter != compiled {
			return refuse("process.args", "the container filter clawos-init loads is not the whitelist's container stage")
		}
	}
	agent, err := translate.ProfileDigest(plan.Stages.Agent.Seccomp)
	if err != nil {
		return err
	}
	if spec.Annotations[confine.AnnotationAgentDigest] != agent {
		return refuse("annotations."+confine.AnnotationAgentDigest, "the agent stage's digest differs")
	}
	if spec.Process == nil || len(spec.Process.Args) < 3 || spec.Process.Args[0] != confine.Init || spec.Process.Args[1] != plan.InlineFilter() {
		return refuse("process.args", "the agent's filter is not loaded by clawos-init")
	}
	if !spec.Process.NoNewPrivileges {
		return refuse("process.noNewPrivileges", "no_new_privs is off")
	}
	if spec.Linux.Devices != nil || spec.Linux.Resources == nil || len(spec.Linux.Resources.Devices) != 1 ||
		spec.Linux.Resources.Devices[0].Allow || spec.Linux.Resources.Devices[0].Access != "rwm" {
		return refuse("linux.devices", "it gives the container devices beyond the runtime's default set (a privileged config)")
	}
	return nil
}

// initContainerFilter is the container filter on a confined command line
// (clawos-init FILTER --container-filter CONTAINER ...), and whether it has
// one.
func initContainerFilter(spec *specs.Spec) (string, bool) {
	if spec.Process == nil {
		return "", false
	}
	if a := spec.Process.Args; len(a) > 3 && a[0] == confine.Init && a[2] == "--container-filter" {
		return a[3], true
	}
	return "", false
}

// installPorts installs the port rules in the network namespace of pid,
// refusing when that is the host's (this hook's own).
func installPorts(pid int, p *namespaces.PortPolicy) error {
	if pid <= 0 {
		return clawerr.New(clawerr.EProto, "the OCI state has no pid")
	}
	_, err := installPortsAt("/proc/"+strconv.Itoa(pid)+"/ns/net", p)
	return err
}

// installPortsAt installs the port rules in the network namespace at path,
// refusing when that is the host's (this hook's own), and returns the
// namespace's identity (device and inode).
func installPortsAt(path string, p *namespaces.PortPolicy) (unix.Stat_t, error) {
	var self, ns unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		return ns, clawerr.Wrap(clawerr.EInternal, err, "stat the host's network namespace")
	}
	f, err := os.Open(path)
	if err != nil {
		return ns, clawerr.Wrap(clawerr.ENoEnt, err, "open the container's network namespace")
	}
	defer f.Close()
	if err := unix.Fstat(int(f.Fd()), &ns); err != nil {
		return ns, clawerr.Wrap(clawerr.ENoEnt, err, "stat the container's network namespace")
	}
	if self.Ino == ns.Ino && self.Dev == ns.Dev {
		return ns, &clawerr.Error{Code: clawerr.EPerm, Path: "linux.namespaces",
			Message: "the whitelist restricts ports, but the container shares the host's network namespace, where they cannot be enforced",
			Hint:    "give the container a network namespace of its own (not --network host)"}
	}
	return ns, p.Install(f)
}

// withRemoval is err, saying so where the port rules of the container
// whose create failed could not be removed (rerr).
func withRemoval(err, rerr error) error {
	if rerr == nil {
		return err
	}
	return fmt.Errorf("%w (and its port rules could not be removed: %v)", err, rerr)
}

// earlyPorts installs a container's port rules in the network namespace
// its config joins (a pod's, which exists before the container) while the
// runtime creates the container: the wrapper's create (WrapCreate). The
// container's process starts only after the create returns, so the rules
// are in before the agent's first instruction either way.
type earlyPorts struct {
	done chan struct{}
	at   record      // the namespace's path and the table (NetNS, Table)
	ns   unix.Stat_t // the namespace the rules went into
	err  error
}

// installEarly starts installing p as container id's table in the network
// namespace at path.
func installEarly(path, id string, p *namespaces.PortPolicy) *earlyPorts {
	e := &earlyPorts{done: make(chan struct{}), at: record{NetNS: path, Table: portTable(id)}}
	pp := *p
	pp.Table = e.at.Table
	go func() {
		defer close(e.done)
		e.ns, e.err = installPortsAt(path, &pp)
	}()
	return e
}

// remove removes the table once its installation has ended (a table is
// never removed before it is in); nothing for a nil e.
func (e *earlyPorts) remove() error {
	if e == nil {
		return nil
	}
	<-e.done
	return removeTable(e.at)
}

// wait returns the installation's error, then checks that the created
// container (pid) is in the namespace the rules went into.
func (e *earlyPorts) wait(pid int) error {
	<-e.done
	if e.err != nil {
		return e.err
	}
	if pid <= 0 {
		return clawerr.New(clawerr.EProto, "the OCI state has no pid")
	}
	var ns unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &ns); err != nil {
		return clawerr.Wrap(clawerr.ENoEnt, err, "stat the container's network namespace")
	}
	if ns.Ino != e.ns.Ino || ns.Dev != e.ns.Dev {
		return &clawerr.Error{Code: clawerr.EPerm, Path: "linux.namespaces",
			Message: "the container is not in the network namespace its config names, where its port rules were installed"}
	}
	return nil
}

// killLogWait bounds poststop's wait for the kernel's record of a seccomp
// kill. poststop runs for every container, killed or not, and a container
// that was not killed has no record: the whole wait is paid by every normal
// stop. By the time an engine runs poststop the record of a kill is there
// (measured: at the first read, 5 ms after the death); one more read 10 ms
// later covers the audit thread's lag. It was 50 ms, 50 of poststop's 67.
// Where the kernel says its audit queue is empty and its audit thread
// sleeps (killlog.IfKilled: root on the host), a container that was not
// killed does not wait at all; where the thread has not run since the
// state record's mark, the log is not read either.
const killLogWait = 10 * time.Millisecond

// Poststop removes what prestart left for the container, and names the
// syscall of a seccomp kill of its agent (Outcome.KilledBy).
func Poststop(st *specs.State, cfg Config) (*Outcome, error) {
	out := &Outcome{}
	// clawos-poststop's file, where it left the stage to us.
	if err := removeQuickFile(quickPath(cfg, st.ID)); err != nil {
		return out, err
	}
	b, err := os.ReadFile(statePath(cfg, st.ID))
	if err == nil {
		var rec record
		if json.Unmarshal(b, &rec) == nil {
			out.Whitelist, out.WhitelistID, out.Digest = rec.Whitelist, rec.WhitelistID, rec.Digest
			// A seccomp kill of the agent (the container's pid, which
			// clawos-init became): the engine says only "Bad system
			// call". The kernel has logged it by the time the engine
			// runs poststop, but for its audit thread's lag, which an
			// empty audit queue rules out; an audit thread that has not
			// run since createRuntime's mark rules out the kill itself.
			if rec.Pid > 0 {
				var mark killlog.Mark
				if rec.Audit != nil {
					mark = *rec.Audit
				}
				if name, found := killlog.IfKilled(rec.Pid, rec.Started, mark, translate.NativeArch(), killLogWait); found {
					out.KilledBy = name
				}
			}
			if err := removeTable(rec); err != nil {
				return out, err
			}
			if rec.AppArmor != "" {
				if err := confine.SystemAppArmor().Release(rec.AppArmor, appArmorHolder(st.ID), confine.UnloadAppArmor); err != nil {
					return out, err
				}
			}
		}
	}
	if err := os.Remove(statePath(cfg, st.ID)); err != nil && !os.IsNotExist(err) {
		return out, clawerr.Wrap(clawerr.EIO, err, "remove the container's state record")
	}
	return out, nil
}

// removeTable removes the port rules a container installed in a network
// namespace it shared, if that namespace still exists (a pod's outlives
// its containers: a restarted container must not find its predecessor's
// rules).
func removeTable(rec record) error {
	if rec.NetNS == "" || rec.Table == "" {
		return nil
	}
	f, err := os.Open(rec.NetNS)
	if err != nil {
		return nil // the namespace is gone, and its rules with it
	}
	defer f.Close()
	return namespaces.DeleteTable(f, rec.Table)
}

// Record is one line of the audit log.
type Record struct {
	Time        time.Time `json:"time"`
	Stage       string    `json:"stage"`
	ContainerID string    `json:"container_id,omitempty"`
	Whitelist   string    `json:"whitelist,omitempty"`
	WhitelistID string    `json:"whitelist_id,omitempty"`
	Digest      string    `json:"profile_digest,omitempty"`
	Signature   string    `json:"signature,omitempty"`
	AppArmor    string    `json:"apparmor,omitempty"`
	Landlock    string    `json:"landlock,omitempty"`
	Notes       []string  `json:"notes,omitempty"`
	// KilledBy is the syscall for which seccomp killed the agent
	// (poststop), from the kernel log.
	KilledBy string `json:"killed_by_syscall,omitempty"`
	Decision string `json:"decision"`
	Code     string `json:"code,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// NewRecord builds the audit record of a stage from its outcome and error.
func NewRecord(stage, id string, out *Outcome, err error) Record {
	r := Record{Time: time.Now().UTC(), Stage: stage, ContainerID: id, Decision: DecisionPassthrough}
	if out != nil {
		r.Whitelist, r.WhitelistID, r.Digest = out.Whitelist, out.WhitelistID, out.Digest
		r.Signature, r.AppArmor, r.Landlock = string(out.Signature), out.AppArmor, out.Landlock
		r.KilledBy = out.KilledBy
		for i, n := range out.Notes {
			if i == 16 {
				break
			}
			r.Notes = append(r.Notes, bounded(n, maxField))
		}
		switch stage {
		case "prestart", "createRuntime":
			r.Decision = DecisionAllowed
		case "poststop":
			r.Decision = DecisionCleaned
		default:
			r.Decision = DecisionApplied
		}
	} else if stage == "poststop" {
		r.Decision = DecisionCleaned
	}
	if err != nil {
		r.Decision, r.Code, r.Reason = DecisionRefused, clawerr.CodeOf(err).String(), err.Error()
	}
	r.ContainerID, r.Whitelist, r.WhitelistID = bounded(r.ContainerID, maxField), bounded(r.Whitelist, maxField), bounded(r.WhitelistID, maxField)
	r.Reason = bounded(r.Reason, maxReason)
	return r
}

// Bounds of an audit record's fields: whatever a container's creator put
// in its annotations, one record stays small.
const (
	maxField  = 256
	maxReason = 2048
	// MaxAuditLog is the size at which the audit log is rotated: renamed to
	// PATH.1 (replacing the previous one), a new file begun.
	MaxAuditLog = 16 << 20
)

// bounded cuts s to at most n bytes (on a UTF-8 boundary), saying how long
// it was.
func bounded(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 40
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...(truncated: %d bytes)", s[:cut], len(s))
}

// Append writes r as one line to the audit log at path, creating it and
// its directory; one write(2) in O_APPEND mode, so that concurrent hooks do
// not interleave lines.
func Append(path string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "encode audit record")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "create the audit log directory")
	}
	if fi, err := os.Lstat(path); err == nil && fi.Size()+int64(len(b))+1 > MaxAuditLog {
		// Rotate; a concurrent hook may have done it already.
		if err := os.Rename(path, path+".1"); err != nil && !os.IsNotExist(err) {
			return clawerr.Wrap(clawerr.EIO, err, "rotate the audit log")
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW, 0o640)
	if err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "open the audit log")
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "write the audit log")
	}
	return nil
}
