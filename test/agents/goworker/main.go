// Command goworker is a small but real Go program for clawos-run --learn's
// tests: goroutines and channels, a TCP echo over loopback, a timer, file
// work in $AGENT_DIR (default /tmp), a signal it sends itself and handles,
// and a garbage collection while every P runs a loop without calls (so
// that the runtime preempts them with signals). It prints "ok" and exits 0.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "goworker:", err)
		os.Exit(1)
	}
	fmt.Println("ok")
}

func run() error {
	// Goroutines and a channel.
	results := make(chan int, 8)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			s := 0
			for j := 0; j < 100000; j++ {
				s += j % (n + 1)
			}
			results <- s
		}(i)
	}
	wg.Wait()
	close(results)
	for range results {
	}

	// TCP echo on loopback.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return err
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		return err
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		return fmt.Errorf("echo: %q %v", buf, err)
	}
	c.Close()

	// A timer.
	<-time.After(5 * time.Millisecond)

	// Files.
	dir := os.Getenv("AGENT_DIR")
	if dir == "" {
		dir = "/tmp"
	}
	p := filepath.Join(dir, fmt.Sprintf("goworker.%d", os.Getpid()))
	if err := os.WriteFile(p, []byte("data"), 0o600); err != nil {
		return err
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "data" {
		return fmt.Errorf("read back: %q %v", b, err)
	}
	if err := os.Remove(p); err != nil {
		return err
	}

	// A signal to itself, handled.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		return err
	}
	select {
	case <-sigs:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("SIGUSR1 not delivered")
	}
	// Loops without function calls on every P, and a garbage collection
	// meanwhile: the runtime must stop them with preemption signals
	// (tgkill), as a busy Go agent's runtime does.
	var spin sync.WaitGroup
	sums := make([]uint64, runtime.GOMAXPROCS(0))
	for p := range sums {
		spin.Add(1)
		go func(p int) {
			defer spin.Done()
			var x uint64
			for i := uint64(0); i < 50_000_000; i++ {
				x += i ^ uint64(p)
			}
			sums[p] = x
		}(p)
	}
	time.Sleep(time.Millisecond)
	runtime.GC()
	spin.Wait()
	return nil
}
