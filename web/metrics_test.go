package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/store"
)

// historyReads is a store that counts the reads of its history: runs,
// decisions and outbox messages.
type historyReads struct {
	store.Store
	n atomic.Int64
}

func (s *historyReads) Runs(ctx context.Context, f store.RunFilter) ([]assertd.Run, error) {
	s.n.Add(1)
	return s.Store.Runs(ctx, f)
}

func (s *historyReads) Decisions(ctx context.Context, f store.DecisionFilter) ([]assertd.Decision, error) {
	s.n.Add(1)
	return s.Store.Decisions(ctx, f)
}

func (s *historyReads) Messages(ctx context.Context, f store.MessageFilter) ([]assertd.Message, error) {
	s.n.Add(1)
	return s.Store.Messages(ctx, f)
}

// A scrape reads no runs, decisions or messages from the store, however
// many there are: its cost does not grow with assertd's history.
func TestScrapeReadsNoHistory(t *testing.T) {
	e := newEnv(t)
	e.seed()
	st := &historyReads{Store: e.st}
	a := e.newApp(app.Options{Store: st, DataDir: t.TempDir()})
	h := a.Handler()
	get := func(path string, code int) string {
		t.Helper()
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Authorization", "Bearer "+readSecret)
		h.ServeHTTP(w, r)
		if w.Code != code {
			t.Fatalf("%s: %d, want %d: %s", path, w.Code, code, w.Body)
		}
		return w.Body.String()
	}
	// The history is there to be read (the API reads it).
	get("/api/v1/runs", 200)
	get("/api/v1/runs/run-that-is-not", 404)
	get("/api/v1/runs/run-nor-this", 404)
	if st.n.Load() == 0 {
		t.Fatal("no reads: the wrapper is not the store in use")
	}
	st.n.Store(0)
	var body string
	for range 3 {
		body = get("/metrics", 200)
	}
	if n := st.n.Load(); n != 0 {
		t.Errorf("%d reads of runs, decisions or messages across 3 scrapes, want 0", n)
	}
	// The histogram is labelled by the route's pattern, not its path.
	for _, want := range []string{`assertd_http_request_duration_seconds_count{code="200",handler="/api/v1/runs",method="get"} 1`,
		`assertd_http_request_duration_seconds_count{code="404",handler="/api/v1/runs/{id}",method="get"} 2`,
		`assertd_http_request_duration_seconds_count{code="200",handler="/metrics",method="get"} 2`} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s in\n%s", want, grepLines(body, "assertd_http_request_duration_seconds_count"))
		}
	}
}
