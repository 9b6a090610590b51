package job

import "fmt"

// signalNames are Linux's signal numbers 1–31 by name.
var signalNames = [...]string{1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
	7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
	14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP",
	21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM", 27: "SIGPROF",
	28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS"}

// exitSignal is the signal an exit code says the container's main process died of (the
// shell's convention, 128+n), or 0 when the code is an ordinary exit.
func exitSignal(code int) int {
	if code > 128 && code <= 128+64 {
		return code - 128
	}
	return 0
}

// signalName is "SIGKILL" for 9, "SIGRTMIN+n" for a real-time signal.
func signalName(n int) string {
	if n > 0 && n < len(signalNames) {
		return signalNames[n]
	}
	if n >= 34 {
		return fmt.Sprintf("SIGRTMIN+%d", n-34)
	}
	return fmt.Sprintf("signal %d", n)
}

// selfInflicted reports whether a program brings the signal on itself (a crash: bad memory
// access, an abort, a broken pipe, a CPU or file-size limit) rather than being sent it.
func selfInflicted(n int) bool {
	switch n {
	case 4, 5, 6, 7, 8, 11, 13, 24, 25, 31:
		return true
	}
	return false
}
