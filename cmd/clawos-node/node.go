package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/hook"
	"github.com/clawos/clawos-security/internal/nodeinstall"
	"github.com/clawos/clawos-security/internal/plancache"
	"github.com/clawos/clawos-security/internal/runcargs"
)

// The subcommands: the installer DaemonSet's (deploy/installer.yaml).
const (
	installCmd = "install"
	syncCmd    = "sync-whitelists"
)

// installFlags defines install's flags.
func installFlags(out io.Writer) (fs *flag.FlagSet, o *nodeinstall.Options, restart *bool, label *string) {
	fs = flag.NewFlagSet("clawos-node "+installCmd, flag.ContinueOnError)
	fs.SetOutput(out)
	o = &nodeinstall.Options{}
	fs.StringVar(&o.Host, "host", "/", "the node's root as seen here (/host in the DaemonSet)")
	fs.StringVar(&o.Prefix, "prefix", "/usr/local", "where the programs go on the node, PREFIX/bin (absolute; /opt/clawos where /usr/local is read-only: COS, Bottlerocket, Flatcar, Talos)")
	fs.StringVar(&o.From, "from", "", "where bin/ and deploy/runtime.json are (default: the directory above this program's)")
	fs.StringVar(&o.Whitelists, "whitelists", "", "a directory of NAME.json whitelists to install (a ConfigMap volume)")
	fs.BoolVar(&o.Containerd, "containerd", false, "configure containerd's clawos runtime handler: a drop-in for its configuration version (2 or 3) with the node's cgroup driver, imported by its config.toml")
	restart = fs.Bool("restart-containerd", false, "with --containerd: restart containerd (systemctl on the node) when its configuration changed, and health-check it through the wrapper")
	label = fs.String("label-node", "", "after a healthy check, label this node (usually $NODE_NAME) "+nodeinstall.ReadyLabel+"=ready through the Kubernetes API")
	return fs, o, restart, label
}

// syncFlags defines sync-whitelists' flags.
func syncFlags(out io.Writer) (fs *flag.FlagSet, from, to *string, interval *time.Duration, once *bool, events *string) {
	fs = flag.NewFlagSet("clawos-node "+syncCmd, flag.ContinueOnError)
	fs.SetOutput(out)
	from = fs.String("from", "", "the ConfigMap volume of NAME.json whitelists")
	to = fs.String("to", "/etc/clawos/whitelists", "the node's trusted whitelist directory")
	interval = fs.Duration("interval", 10*time.Second, "how often to compare")
	once = fs.Bool("once", false, "sync once and exit")
	events = fs.String("events", "", "NAMESPACE/POD: also report a refused whitelist as a Warning event of that pod (the DaemonSet's own, from the downward API), once per new refusal")
	return fs, from, to, interval, once, events
}

// installNode is `clawos-node install`: nodeinstall.Install, then,
// where containerd's configuration changed and --restart-containerd asks,
// a restart; then a health check through the wrapper and the node's label.
func installNode(args []string, stdout, stderr io.Writer) int {
	log := nodeLog(stderr)
	fs, o, restart, label := installFlags(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.From == "" {
		self, err := os.Executable()
		if err != nil {
			return nodeFail(log, err)
		}
		o.From = filepath.Dir(filepath.Dir(self))
	}
	o.Validate = plancache.PolicyValidator(filepath.Join(o.From, "bin", "clawos-policy"))
	res, err := nodeinstall.Install(*o, log)
	if res != nil && res.Whitelists != nil {
		reportSync(log, res.Whitelists)
		// The node's hook finds each installed whitelist validated: the
		// configuration the wrapper reads, its programs in Prefix/bin.
		cfg, cerr := hook.ReadConfig(filepath.Join(o.Host, runcargs.DefaultConfigFile), true)
		if cerr == nil {
			cerr = hook.Prewarm(cfg.WithDefaults(filepath.Join(o.Prefix, "bin", "clawos-runc")), o.Host,
				res.Whitelists.Paths(), o.Validate, log)
		}
		if cerr != nil && err == nil {
			err = cerr
		}
	}
	if err != nil {
		return nodeFail(log, err)
	}
	fmt.Fprintf(stdout, "clawos-security installed under %s (programs in %s/bin, configuration in /etc/clawos)\n", o.Host, o.Prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if c := res.Containerd; c != nil {
		fmt.Fprintf(stdout, "containerd: configuration version %d, cgroup driver %s (from %s), %s %s\n", c.Version,
			map[bool]string{true: "systemd", false: "cgroupfs"}[c.SystemdCgroup], c.DriverFrom, nodeinstall.DropIn,
			map[bool]string{true: "written", false: "unchanged"}[c.Changed])
		if *restart {
			if c.Changed {
				if err := nodeinstall.RestartContainerd(ctx, o.Host); err != nil {
					return nodeFail(log, err)
				}
				fmt.Fprintln(stdout, "containerd restarted")
			}
			if err := nodeinstall.HealthCheck(ctx, o.Host, o.Prefix); err != nil {
				return nodeFail(log, err)
			}
			fmt.Fprintln(stdout, "health check passed: containerd answers, the wrapper runs runc")
		}
	}
	if *label != "" {
		if res.Containerd == nil || !*restart {
			return nodeFail(log, fmt.Errorf("--label-node needs --containerd --restart-containerd: a node is labelled ready only after its health check"))
		}
		api, err := nodeinstall.InCluster()
		if err != nil {
			return nodeFail(log, err)
		}
		if err := api.LabelNode(ctx, *label); err != nil {
			return nodeFail(log, err)
		}
		fmt.Fprintf(stdout, "node %s labelled %s=ready\n", *label, nodeinstall.ReadyLabel)
	}
	if res.Whitelists != nil && len(res.Whitelists.Refused) > 0 {
		return nodeFail(log, fmt.Errorf("some whitelists were refused (above); the others are installed"))
	}
	return 0
}

// syncWhitelists is `clawos-node sync-whitelists`: the DaemonSet's main
// container, keeping the node's trusted directory in step with the
// ConfigMap, every --interval until SIGTERM.
func syncWhitelists(args []string, stderr io.Writer) int {
	log := nodeLog(stderr)
	fs, from, to, interval, once, events := syncFlags(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *from == "" {
		fmt.Fprintln(stderr, "clawos-node sync-whitelists: --from is required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
	defer stop()
	var api *nodeinstall.API
	var ns, pod string
	if *events != "" {
		var ok bool
		if ns, pod, ok = strings.Cut(*events, "/"); !ok || ns == "" || pod == "" {
			fmt.Fprintln(stderr, "clawos-node sync-whitelists: --events wants NAMESPACE/POD")
			return 2
		}
		var err error
		if api, err = nodeinstall.InCluster(); err != nil {
			return nodeFail(log, err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nodeFail(log, err)
	}
	// Validated by clawos-policy next to this program (the installer
	// image's): clawos-node does not link the JSON Schema library.
	validate := plancache.PolicyValidator(filepath.Join(filepath.Dir(self), "clawos-policy"))
	reported := map[string]string{} // refused name -> the reason already reported
	for {
		res, err := nodeinstall.SyncWhitelists(*from, *to, validate, log)
		if res != nil {
			reportSync(log, res)
			for name, why := range res.Refused {
				if api != nil && reported[name] != why {
					if err := api.Event(ctx, ns, pod, "Warning", "WhitelistRefused", "whitelist "+name+" was not installed: "+why); err != nil {
						log.WithError(err).Warn("could not record the refusal as an event")
					} else {
						reported[name] = why
					}
				}
			}
			for name := range reported {
				if _, still := res.Refused[name]; !still {
					delete(reported, name)
				}
			}
		}
		if err != nil {
			log.WithError(err).Error("whitelist sync failed")
		}
		if *once {
			if err != nil || (res != nil && len(res.Refused) > 0) {
				return 1
			}
			return 0
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(*interval):
		}
	}
}

func reportSync(log logrus.FieldLogger, r *nodeinstall.SyncResult) {
	if len(r.Installed) > 0 {
		log.WithField("whitelists", strings.Join(r.Installed, ",")).Info("installed")
	}
	if len(r.Removed) > 0 {
		log.WithField("whitelists", strings.Join(r.Removed, ",")).Info("removed: no longer in the ConfigMap")
	}
	names := make([]string, 0, len(r.Refused))
	for n := range r.Refused {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		log.WithField("whitelist", n).Error("refusing whitelist " + n + ": " + r.Refused[n] + " (never installed; the node keeps its current copy)")
	}
}

func nodeLog(stderr io.Writer) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(stderr)
	return log
}

func nodeFail(log logrus.FieldLogger, err error) int {
	log.WithError(err).Error("clawos-node failed")
	return 1
}
