// Package testproc stops the server processes tests start (Prometheus,
// Alertmanager) and reads the tail of their logs for failure messages.
package testproc

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Stop terminates cmd, started in its own process group, and waits until
// done is closed (the goroutine waiting for cmd closes it), killing the
// group after 10s.
func Stop(cmd *exec.Cmd, done <-chan struct{}) {
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Tail returns the last 40 lines of the log file at path.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}
