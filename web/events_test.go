package web_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"
)

// openStream opens /api/v1/events and returns the "data:" lines it
// receives, in order.
func openStream(t *testing.T, e *env) <-chan string {
	t.Helper()
	req, _ := http.NewRequestWithContext(e.ctx, "GET", e.base+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+readSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	data := make(chan string, 16)
	go func() {
		defer close(data)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				data <- d
			}
		}
	}()
	return data
}

func next(t *testing.T, data <-chan string, what string) string {
	t.Helper()
	select {
	case d, ok := <-data:
		if !ok {
			t.Fatalf("%s: the stream ended", what)
		}
		return d
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no event", what)
	}
	return ""
}

// TestEventsShared: every open stream gets the same state after a change,
// byte for byte, while one more stream is open that its client does not
// read.
func TestEventsShared(t *testing.T) {
	e := newEnv(t)
	e.seed()
	req, _ := http.NewRequestWithContext(e.ctx, "GET", e.base+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+readSecret)
	idle, err := http.DefaultClient.Do(req) // its body is never read
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Body.Close()
	var streams []<-chan string
	var first string
	for i := range 5 {
		data := openStream(t, e)
		d := next(t, data, "first event")
		if i == 0 {
			first = d
		} else if d != first {
			t.Fatalf("stream %d began with %s, stream 0 with %s", i, d, first)
		}
		streams = append(streams, data)
	}
	e.sample("pg_free_connections", 70, "instance", "db3", "cluster", "reports")
	e.eval()
	var after string
	for i, data := range streams {
		d := next(t, data, "after the change")
		if d == first {
			t.Fatalf("stream %d: the state did not change: %s", i, d)
		}
		if i == 0 {
			after = d
		} else if d != after {
			t.Fatalf("stream %d got %s, stream 0 %s", i, d, after)
		}
	}
	if !strings.Contains(after, `"problems":1`) {
		t.Fatalf("after recovery %s", after)
	}
}
