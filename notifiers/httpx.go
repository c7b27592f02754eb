package notifiers

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxExcerpt bounds how much of a provider's answer an error quotes.
const maxExcerpt = 200

// capture records, for one request, what the provider answered: its status,
// Retry-After and the head of its body (the client libraries drop them).
type capture struct {
	status     int
	retryAfter string
	head       []byte
}

type captureKey struct{}

// withCapture returns a context whose requests record their answer in c.
func withCapture(ctx context.Context) (context.Context, *capture) {
	c := &capture{}
	return context.WithValue(ctx, captureKey{}, c), c
}

// captureTransport fills the capture of a request's context, if any.
type captureTransport struct{ base http.RoundTripper }

func (t captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	c, _ := r.Context().Value(captureKey{}).(*capture)
	if c == nil || resp == nil {
		return resp, err
	}
	c.status, c.retryAfter, c.head = resp.StatusCode, resp.Header.Get("Retry-After"), nil
	resp.Body = &teeHead{ReadCloser: resp.Body, c: c}
	return resp, err
}

type teeHead struct {
	io.ReadCloser
	c *capture
}

func (t *teeHead) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if room := 4*maxExcerpt - len(t.c.head); room > 0 && n > 0 {
		t.c.head = append(t.c.head, p[:min(n, room)]...)
	}
	return n, err
}

// excerpt is the bounded, printable head of an answer, for an error.
func (c *capture) excerpt() string {
	if c == nil || len(c.head) == 0 {
		return "(no answer body)"
	}
	return excerpt(string(c.head))
}

func excerpt(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || (!unicode.IsPrint(r) && r != ' ') {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	return truncate(s, maxExcerpt)
}

// retryAfterHeader reads a Retry-After of seconds or an HTTP date.
func retryAfterHeader(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(min(s, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}

// retryableStatus says whether an HTTP status is worth retrying.
func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooEarly || code == http.StatusTooManyRequests || code >= 500
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if cut <= 0 {
		return s[:0]
	}
	return s[:cut] + mark
}

// truncateRunes cuts s to at most n characters (Slack counts characters).
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// tail keeps the last n bytes of s (a step log's end matters most).
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := len(s) - n + len("…\n")
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++
	}
	return "…\n" + s[cut:]
}
