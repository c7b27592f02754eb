package remediations

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Clock is the time the runner reads and waits on (wait steps, retry
// backoff, approval expiry). Tests inject one to make those exact and fast.
// Process timeouts use real time: they bound real processes.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// sleep waits d on c, or until ctx ends.
func sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-c.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tailBuffer keeps the last max bytes written to it: output floods are cut,
// never buffered without bound. It is safe for concurrent writers (stdout
// and stderr of one process).
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	buf   []byte
	total int64
}

func newTail(limit int) *tailBuffer { return &tailBuffer{max: limit} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total += int64(len(p))
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return len(p), nil
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max { // compact now and then, not on every write
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// String returns the kept tail, marked when output was cut.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	if t.total > int64(len(b)) {
		return fmt.Sprintf("[assertd: %d bytes of output, the last %d kept]\n", t.total, len(b)) + string(b)
	}
	return string(b)
}

// Cut reports whether output was cut.
func (t *tailBuffer) Cut() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total > int64(min(len(t.buf), t.max))
}

// redactor replaces secret values with a marker wherever they appear.
type redactor struct {
	mu      sync.Mutex
	secrets []string
}

const redacted = "[redacted]"

func (r *redactor) add(s string) {
	if s == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.secrets, s) {
		r.secrets = append(r.secrets, s)
		// Longest first, so that a secret containing another is replaced whole.
		slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
	}
}

// redact replaces every secret in s. When cut is set, s is the tail of a
// longer output whose start may hold the end of a secret: those first bytes
// are dropped too.
func (r *redactor) redact(s string, cut bool) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	longest := 0
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, redacted)
		longest = max(longest, len(sec))
	}
	if cut && longest > 0 {
		// Keep the marker line assertd wrote, drop what may be half a secret.
		head, rest, ok := strings.Cut(s, "\n")
		if ok && strings.HasPrefix(head, "[assertd:") {
			if len(rest) > longest {
				rest = rest[longest:]
			} else {
				rest = ""
			}
			s = head + " [assertd: a possible partial secret at the cut was dropped]\n" + rest
		}
	}
	return s
}

// stepLog is the bounded, redacted summary of a run attached to its page.
type stepLog struct {
	b strings.Builder
}

const maxStepLog = 8 << 10

func (l *stepLog) add(format string, args ...any) {
	fmt.Fprintf(&l.b, format, args...)
	if !strings.HasSuffix(l.b.String(), "\n") {
		l.b.WriteByte('\n')
	}
}

// String returns the log, its tail kept when it is long.
func (l *stepLog) String() string {
	s := l.b.String()
	if len(s) > maxStepLog {
		s = "[assertd: step log cut to its end]\n" + s[len(s)-maxStepLog:]
	}
	return s
}

// lastLines returns up to n last lines of s, each cut to 300 bytes.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, ln := range lines {
		if len(ln) > 300 {
			lines[i] = ln[:300] + "…"
		}
	}
	return strings.Join(lines, "\n")
}
