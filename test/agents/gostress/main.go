// Command gostress exercises the Go runtime for a moment (goroutines on
// every P, allocation and garbage collection, asynchronous preemption of
// tight loops, timers) and does nothing else. The calls it makes are what a
// Go program's runtime may make at any time; the container stage allows
// them for runtimes whose init is written in Go (runc, libcontainer).
package main

import (
	"runtime"
	"sync"
	"time"
)

var sink []byte

func main() {
	deadline := time.Now().Add(300 * time.Millisecond)
	var wg sync.WaitGroup
	for i := 0; i < 4*runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			x := 0
			for time.Now().Before(deadline) {
				for j := 0; j < 1_000_000; j++ { // a tight loop: asynchronous preemption
					x += j ^ i
				}
				b := make([]byte, 64<<10) // allocation: GC, scavenger
				b[0] = byte(x)
				sink = b
				time.Sleep(time.Millisecond) // timers, sysmon
			}
		}(i)
	}
	wg.Wait()
	runtime.GC()
	runtime.KeepAlive(sink)
}
