// Package main is a small program the remediation tests run as a real
// child process: it exits with a code, prints, records its argv, floods, ignores SIGTERM,
// spawns children, serves a health endpoint (a supervised service) and
// signals a pid.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: helper MODE ARGS...")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "exit":
		n, _ := strconv.Atoi(args[0])
		fmt.Println("exiting with", n)
		os.Exit(n)
	case "echo":
		fmt.Println(strings.Join(args, " "))
	case "env":
		env := os.Environ()
		slices.Sort(env)
		fmt.Println(strings.Join(env, "\n"))
	case "flood":
		n, _ := strconv.Atoi(args[0])
		line := []byte(strings.Repeat("x", 99) + "\n")
		for i := 0; i < n; i += len(line) {
			os.Stdout.Write(line)
		}
		fmt.Println("end of flood")
	case "argv": // argv FILE ARGS...: write ARGS to FILE, each ended by NUL
		var b []byte
		for _, a := range args[1:] {
			b = append(append(b, a...), 0)
		}
		os.WriteFile(args[0], b, 0o644)
	case "touch":
		os.WriteFile(args[0], []byte("touched"), 0o644)
	case "fail-until": // fail-until COUNTER N: exit 1 until the Nth call
		b, _ := os.ReadFile(args[0])
		c, _ := strconv.Atoi(string(b))
		c++
		os.WriteFile(args[0], []byte(strconv.Itoa(c)), 0o644)
		n, _ := strconv.Atoi(args[1])
		fmt.Println("call", c)
		if c < n {
			os.Exit(1)
		}
	case "ignore-term": // ignore-term PIDFILE: a child in the same group, both ignore SIGTERM
		signal.Ignore(syscall.SIGTERM)
		child := exec.Command(os.Args[0], "sleep-ignoring", "60")
		child.Start()
		os.WriteFile(args[0], []byte(strconv.Itoa(child.Process.Pid)), 0o644)
		fmt.Println("ignoring SIGTERM")
		time.Sleep(60 * time.Second)
	case "sleep-ignoring":
		signal.Ignore(syscall.SIGTERM)
		time.Sleep(60 * time.Second)
	case "serve": // serve DIR: a service with a health endpoint
		serve(args[0])
	case "kill": // kill PIDFILE: SIGTERM the pid in the file
		b, err := os.ReadFile(args[0])
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			fmt.Println("kill", pid, err)
			os.Exit(1)
		}
		fmt.Println("sent SIGTERM to", pid)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

// serve answers /health with 200 until /wedge is called (in memory: a
// restart clears it) or while DIR/broken exists (on disk: a restart does
// not help).
func serve(dir string) {
	var wedged atomic.Bool
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		_, err := os.Stat(filepath.Join(dir, "broken"))
		if wedged.Load() || err == nil {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	http.HandleFunc("/wedge", func(w http.ResponseWriter, r *http.Request) { wedged.Store(true) })
	os.WriteFile(filepath.Join(dir, "service.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644)
	tmp := filepath.Join(dir, "addr.tmp")
	os.WriteFile(tmp, []byte(l.Addr().String()), 0o644)
	os.Rename(tmp, filepath.Join(dir, "addr"))
	fmt.Println("ready")
	http.Serve(l, nil)
}
