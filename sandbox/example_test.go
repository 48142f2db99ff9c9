package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/sandbox"
)

// A program that launches an agent as clawos-run does: plan, choose the
// runtime, run with the signals it wants forwarded. (A program using the
// embedded runtime calls sandbox.Reexec first thing in main.)
func Example() {
	log := logrus.New()
	host, err := sandbox.ProbeHost("/usr/local/bin/clawos-init")
	if err != nil {
		log.Fatal(err)
	}
	cfg := sandbox.Config{
		Whitelist: "examples/ironclaw.whitelist.json",
		Workspace: "/home/agent/project",
		Command:   []string{"python3", "agent.py"},
	}
	plan, err := sandbox.NewPlan(cfg, host, log)
	if err != nil {
		log.Fatal(err)
	}
	rt, err := sandbox.NewRuntime("embedded", plan.Config().StateDir, log)
	if err != nil {
		log.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM)
	status, err := sandbox.Run(context.Background(), plan, rt, sandbox.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, sigs, os.Stderr)
	fmt.Println(status, err)
}
