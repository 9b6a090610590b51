package cli

import (
	"os"
	"runtime"
)

// setProcs sets how many CPUs run berth's Go code at once (GOMAXPROCS) for a process that
// serves the service proxy: n when n > 0; otherwise, unless the GOMAXPROCS environment variable
// chose already, half of the CPUs Go would use, at least one. It returns the value in force.
//
// Why not all of them: the proxy's work is mostly waiting on sockets, and Go's scheduler keeps
// an idle CPU spinning, then sleeping, each time a goroutine wakes. On a 2-CPU machine that
// doubled berth's CPU time per proxied request (measured by berth bench: about 420 µs against
// 220 µs at one connection), CPU taken from the services' own containers on the same cores.
//
// Calling it again (a test running several servers in one process) gives the same answer.
func setProcs(n int) int {
	if n <= 0 {
		if os.Getenv("GOMAXPROCS") != "" {
			return runtime.GOMAXPROCS(0)
		}
		n = max(1, startProcs/2)
	}
	runtime.GOMAXPROCS(n)
	return n
}

// startProcs is the GOMAXPROCS the runtime chose at start (the CPUs it may use, cgroup limits
// counted).
var startProcs = runtime.GOMAXPROCS(0)
