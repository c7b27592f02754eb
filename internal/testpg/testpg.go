// Package testpg starts a real, throwaway PostgreSQL server for tests: initdb
// in a fresh directory under os.TempDir, a free port on 127.0.0.1 (and a Unix
// socket in that directory), trust authentication for the postgres user, and
// fsync off. Start registers the stop with t.Cleanup; the directory is removed
// when the server stops.
//
// PostgreSQL refuses to run as root, so when the test runs as root every
// PostgreSQL program runs as the postgres user (runuser -u postgres), and the
// directory is handed to that user.
//
// Missing binaries fail the test — they are never a reason to skip:
// "PostgreSQL not installed: run make deps (apt-get install postgresql)".
//
// For replication tests, Options.StandbyOf clones a running server with
// pg_basebackup -R into a streaming standby, Halt and Resume stop and start a
// server while keeping its data, and Run runs any PostgreSQL program (pg_ctl
// promote, psql …) as the right user.
//
// Use it from tests only.
package testpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotInstalled is returned when the PostgreSQL programs are missing.
var ErrNotInstalled = errors.New("PostgreSQL not installed: run make deps (apt-get install postgresql)")

// Options changes how a server is made. The zero value is a fresh server.
type Options struct {
	// BinDir holds initdb, pg_ctl and postgres. Default: $PG_BIN_DIR, else
	// the newest /usr/lib/postgresql/*/bin, else the directory of initdb
	// on $PATH.
	BinDir string
	// Conf is extra postgresql.conf lines, such as "wal_level = logical".
	Conf []string
	// StandbyOf, when set, makes this server a streaming standby of that
	// one (pg_basebackup -R) instead of running initdb.
	StandbyOf *Server
	// Timeout bounds initdb (or pg_basebackup) and the start; default 60s.
	Timeout time.Duration
}

// Server is a running PostgreSQL server.
type Server struct {
	BinDir  string // the PostgreSQL programs
	Root    string // the directory holding everything; removed by Stop
	DataDir string // the cluster (PGDATA)
	Socket  string // the Unix socket directory (= Root)
	Host    string // 127.0.0.1
	Port    int
	User    string // the superuser: postgres, no password

	timeout time.Duration
	mu      sync.Mutex
	running bool
	gone    bool
}

// Start starts a server for the test and stops it (removing its files) when
// the test and its subtests end. It fails the test when it cannot.
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s, err := New(ctx, o)
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("testpg: %v", err)
		}
	})
	return s
}

// New makes and starts a server; the caller must call Stop.
func New(ctx context.Context, o Options) (*Server, error) {
	bin, err := findBinDir(o.BinDir)
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "testpg-")
	if err != nil {
		return nil, err
	}
	s := &Server{BinDir: bin, Root: root, DataDir: filepath.Join(root, "data"), Socket: root, Host: "127.0.0.1", User: "postgres", timeout: o.Timeout}
	if s.timeout <= 0 {
		s.timeout = 60 * time.Second
	}
	fail := func(err error) (*Server, error) {
		s.gone = true
		_ = os.RemoveAll(root)
		return nil, err
	}
	if err := s.handOver(root); err != nil {
		return fail(err)
	}
	if o.StandbyOf != nil {
		p := o.StandbyOf
		if out, err := s.Run(ctx, "pg_basebackup", "-h", p.Host, "-p", strconv.Itoa(p.Port), "-U", p.User,
			"-D", s.DataDir, "-R", "-X", "stream", "-c", "fast"); err != nil {
			return fail(fmt.Errorf("pg_basebackup from %s:%d: %w\n%s", p.Host, p.Port, err, out))
		}
	} else if out, err := s.Run(ctx, "initdb", "-D", s.DataDir, "-U", s.User, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}
	conf := append([]string{
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("unix_socket_directories = '%s'", s.Socket),
		"fsync = off",
		"synchronous_commit = off",
		"shared_buffers = 32MB",
		"max_connections = 100",
	}, o.Conf...)
	f, err := os.OpenFile(filepath.Join(s.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString("\n# testpg\n" + strings.Join(conf, "\n") + "\n")
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		return fail(fmt.Errorf("writing postgresql.conf: %w", err))
	}
	// A port found free may be taken before the server binds it: try anew.
	for attempt := 0; ; attempt++ {
		if s.Port, err = freePort(); err != nil {
			return fail(err)
		}
		if err = s.Resume(ctx); err == nil {
			return s, nil
		}
		if attempt == 2 || !strings.Contains(err.Error(), "could not bind") || ctx.Err() != nil {
			return fail(err)
		}
	}
}

// handOver gives dir to the postgres user when we run as root.
func (s *Server) handOver(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root, PostgreSQL needs the postgres user: %w (%w)", err, ErrNotInstalled)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}

// Run runs one of the PostgreSQL programs (initdb, pg_ctl, psql, …) as the
// server's user and returns its combined output.
func (s *Server) Run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	path := filepath.Join(s.BinDir, prog)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = s.Root
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGHOST="+s.Socket)
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

// DSN is the URL to connect to database dbname (postgres is always there).
func (s *Server) DSN(dbname string) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable&connect_timeout=5", s.User, s.Host, s.Port, dbname)
}

// CreateDB creates a fresh database and returns its DSN.
func (s *Server) CreateDB(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", s.DSN("postgres"), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.DSN(name), nil
}

// Resume starts a halted server on its port, waiting until it takes
// connections.
func (s *Server) Resume(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return errors.New("testpg: the server was stopped and removed")
	}
	if s.running {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	logFile := filepath.Join(s.Root, "postgres.log")
	secs := strconv.Itoa(int(s.timeout.Seconds()))
	out, err := s.Run(ctx, "pg_ctl", "start", "-D", s.DataDir, "-l", logFile, "-w", "-t", secs, "-o", "-p "+strconv.Itoa(s.Port))
	if err != nil {
		log, _ := os.ReadFile(logFile)
		_ = s.halt("immediate") // the start error is the one to report
		return fmt.Errorf("pg_ctl start on port %d: %w\n%s\n%s", s.Port, err, out, tailLines(string(log), 20))
	}
	s.running = true
	// pg_ctl -w waited for the server; make sure it answers on TCP.
	for {
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		if err == nil {
			_ = conn.Close(ctx)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server on port %d does not answer: %w", s.Port, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Halt stops the server, keeping its data: "fast" (disconnect clients,
// clean shutdown) or "immediate" (like a crash).
func (s *Server) Halt(mode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	return s.halt(mode)
}

func (s *Server) halt(mode string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	out, err := s.Run(ctx, "pg_ctl", "stop", "-D", s.DataDir, "-m", mode, "-w", "-t", "30")
	if err != nil && mode != "immediate" {
		out2, err2 := s.Run(ctx, "pg_ctl", "stop", "-D", s.DataDir, "-m", "immediate", "-w", "-t", "30")
		out, err = append(out, out2...), err2
	}
	if err != nil && strings.Contains(string(out), "is the server running?") {
		err = nil // it was not running
	}
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	s.running = false
	return nil
}

// Stop stops the server and removes its files. It may be called again.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return nil
	}
	var err error
	if s.running {
		err = s.halt("fast")
	}
	s.gone = true
	return errors.Join(err, os.RemoveAll(s.Root))
}

func findBinDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("PG_BIN_DIR")
	}
	if dir == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
				dir = d
				break
			}
		}
	}
	if dir == "" {
		if p, err := exec.LookPath("initdb"); err == nil {
			dir = filepath.Dir(p)
		}
	}
	if dir == "" {
		return "", ErrNotInstalled
	}
	for _, prog := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, prog)); err != nil {
			return "", fmt.Errorf("%w (no %s in %s)", ErrNotInstalled, prog, dir)
		}
	}
	return dir, nil
}

// version reads the major version from /usr/lib/postgresql/15/bin.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
