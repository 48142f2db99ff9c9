// Command alternate runs commands in turn, ROUNDS times, and prints the
// percentiles of each one's wall time: what runs just before a command
// changes its time on a small machine (the kernel's deferred work of the
// previous run), so launchers are compared in the same sequence.
//
//	go run ./test/alternate ROUNDS 'CMD ARGS...' 'CMD ARGS...' ...
//
// {i} in a command is replaced by a name unique to the round (container
// ids).
package main

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: alternate ROUNDS 'CMD ARGS...' ...")
		os.Exit(2)
	}
	rounds, err := strconv.Atoi(os.Args[1])
	if err != nil || rounds < 1 {
		fmt.Fprintf(os.Stderr, "alternate: ROUNDS %q: want a positive number\n", os.Args[1])
		os.Exit(2)
	}
	cmds := os.Args[2:]
	times := make([][]time.Duration, len(cmds))
	for i := 0; i < rounds; i++ {
		for j, c := range cmds {
			f := strings.Fields(strings.ReplaceAll(c, "{i}", fmt.Sprintf("alt-%d-%d", os.Getpid(), i)))
			start := time.Now()
			if out, err := exec.Command(f[0], f[1:]...).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "alternate: %s: %v\n%s", c, err, out)
				os.Exit(1)
			}
			times[j] = append(times[j], time.Since(start))
		}
	}
	for j, c := range cmds {
		fmt.Printf("%s\n  %s\n", c, summary(times[j]))
	}
}

// summary is the 10th, 25th, 50th, 75th and 90th percentiles and the mean,
// in milliseconds.
func summary(d []time.Duration) string {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	q := func(p float64) float64 { return ms(s[int(p*float64(len(s)-1))]) }
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	return fmt.Sprintf("p10 %.1f  p25 %.1f  p50 %.1f  p75 %.1f  p90 %.1f  mean %.1f ms", q(.1), q(.25), q(.5), q(.75), q(.9), ms(sum/time.Duration(len(s))))
}
