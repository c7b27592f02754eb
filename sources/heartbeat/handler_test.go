package heartbeat

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/internal/fakeclock"
)

const testKey = "s3cret-ping-key"

// handlerFixture: "job" (period 1h, max_runtime 30m) and "locked" (needs
// testKey), over a store that can be made to fail.
func handlerFixture(t testing.TB) (*Tracker, http.Handler, *flakyStore, *fakeclock.Clock) {
	t.Helper()
	locked := periodHB("locked", time.Hour, 0, 0)
	locked.KeyEnv, locked.Public = "LOCKED_KEY", false
	store := &flakyStore{mem: NewMemoryStore()}
	tr, err := New(context.Background(), []*asserts.CompiledHeartbeat{periodHB("job", time.Hour, 5*time.Minute, 30*time.Minute), locked}, asserts.Pings{}, store, Options{
		Now:       func() time.Time { return t0 },
		LookupEnv: func(string) (string, bool) { return testKey, true },
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	clk := fakeclock.New(t0)
	return tr, tr.Handler(clk.Now), store, clk
}

func do(h http.Handler, method, target, body string, header ...string) *httptest.ResponseRecorder {
	var r io.Reader = http.NoBody
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestHandlerRoutes(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodHead} {
		for _, tc := range []struct {
			path     string
			state    State
			lastExit int
		}{
			{"/ping/job", StateUp, 0},
			{"/ping/job/start", StateStarted, 0},
			{"/ping/job/fail", StateDown, 1},
			{"/ping/job/0", StateUp, 0},
			{"/ping/job/3", StateDown, 3},
			{"/ping/job/255", StateDown, 255},
			{"/ping/job/007", StateDown, 7},
			{"/ping/job/start?rid=0b7d2f4e-9c1a-4f5e-8d3b-2a6c9e1f7b40", StateStarted, 0},
			{"/ping/job?rid=", StateUp, 0},
			{"/ping/job?unknown=1", StateUp, 0},
		} {
			t.Run(method+" "+tc.path, func(t *testing.T) {
				tr, h, store, _ := handlerFixture(t)
				w := do(h, method, tc.path, "")
				if w.Code != http.StatusOK {
					t.Fatalf("%d %s", w.Code, w.Body)
				}
				wantBody := "OK"
				if method == http.MethodHead {
					wantBody = ""
				}
				if w.Body.String() != wantBody {
					t.Fatalf("body %q, want %q", w.Body, wantBody)
				}
				st, _ := tr.Status("job", t0)
				if State(st.State) != tc.state || st.LastExit != tc.lastExit || !st.LastPing.Equal(t0) {
					t.Fatalf("status %+v, want %s exit %d", st, tc.state, tc.lastExit)
				}
				pings, _ := store.RecentPings(context.Background(), "job", 10)
				if len(pings) != 1 || pings[0].ID == 0 || !pings[0].At.Equal(t0) {
					t.Fatalf("stored pings %+v", pings)
				}
			})
		}
	}
}

func decodeError(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Fatalf("body %q is not a JSON error: %v", w.Body, err)
	}
	return e.Error
}

func TestHandlerErrors(t *testing.T) {
	tests := []struct {
		method, target string
		header         []string
		code           int
		msg            string
	}{
		{"GET", "/ping/nope", nil, 404, `unknown heartbeat "nope": add it under heartbeats: in a rule file`},
		{"POST", "/ping/nope/start", nil, 404, `unknown heartbeat "nope": add it under heartbeats: in a rule file`},
		{"GET", "/ping/job/256", nil, 400, "exit code 256 is out of range: use 0 to 255"},
		{"GET", "/ping/job/999", nil, 400, "exit code 999 is out of range"},
		{"GET", "/ping/job/-1", nil, 400, `unknown ping action "-1"`},
		{"GET", "/ping/job/+1", nil, 400, `unknown ping action "+1"`},
		{"GET", "/ping/job/1000", nil, 400, `unknown ping action "1000"`},
		{"GET", "/ping/job/ign", nil, 400, `unknown ping action "ign": use /ping/{name}`},
		{"GET", "/ping/job/start/more", nil, 400, "no such ping path"},
		{"GET", "/ping/", nil, 400, "no such ping path"},
		{"GET", "/ping", nil, 400, "no such ping path"},
		{"GET", "/ping/job/", nil, 400, "malformed ping path"},
		{"GET", "/ping/job/./start", nil, 400, "malformed ping path"},
		{"GET", "/ping//job", nil, 400, "malformed ping path"},
		{"GET", "/ping/a%20b", nil, 400, `heartbeat name "a b" is not valid`},
		{"GET", "/ping/a%2Fb/start", nil, 400, `heartbeat name "a/b" is not valid`},
		{"GET", "/ping/" + strings.Repeat("x", 300), nil, 400, "is not valid"},
		{"GET", "/ping/job/start?rid=a%20b", nil, 400, "invalid rid: a rid is 1 to 64"},
		{"GET", "/ping/job/start?rid=" + strings.Repeat("r", 65), nil, 400, "invalid rid"},
		{"GET", "/ping/job?rid=a&rid=b", nil, 400, "pass rid once"},
		{"GET", "/ping/job?x=%zz", nil, 400, "malformed query string"},
		{"GET", "/ping/locked", nil, 401, `heartbeat "locked" needs its ping key: pass ?key= or the X-Assertd-Key header`},
		{"GET", "/ping/locked?key=wrong", nil, 403, `wrong ping key for heartbeat "locked"`},
		{"GET", "/ping/locked?key=" + testKey + "x", nil, 403, "wrong ping key"},
		{"GET", "/ping/locked", []string{KeyHeader, "wrong"}, 403, "wrong ping key"},
		{"GET", "/ping/locked?key=" + testKey, []string{KeyHeader, testKey}, 400, "pass the ping key once"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			tr, h, _, _ := handlerFixture(t)
			w := do(h, tc.method, tc.target, "", tc.header...)
			if w.Code != tc.code {
				t.Fatalf("code %d, want %d (%s)", w.Code, tc.code, w.Body)
			}
			if msg := decodeError(t, w); !strings.Contains(msg, tc.msg) {
				t.Fatalf("error %q, want it to contain %q", msg, tc.msg)
			}
			if strings.Contains(w.Body.String(), testKey) {
				t.Fatalf("the response shows the key: %s", w.Body)
			}
			for _, n := range []string{"job", "locked"} {
				if st, _ := tr.State(n, t0); st != StateNew {
					t.Fatalf("a refused ping changed %s to %s", n, st)
				}
			}
		})
	}
}

func TestHandlerExactUnknownBody(t *testing.T) {
	_, h, _, _ := handlerFixture(t)
	w := do(h, "GET", "/ping/x", "")
	if got, want := w.Body.String(), `{"error":"unknown heartbeat \"x\": add it under heartbeats: in a rule file"}`+"\n"; got != want {
		t.Fatalf("body %s, want %s", got, want)
	}
}

func TestHandlerMethods(t *testing.T) {
	_, h, _, _ := handlerFixture(t)
	for _, m := range []string{"PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "BREW"} {
		w := do(h, m, "/ping/job", "")
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD, POST" {
			t.Errorf("%s: %d, Allow %q", m, w.Code, w.Header().Get("Allow"))
		}
		decodeError(t, w)
	}
	w := do(h, "HEAD", "/ping/nope", "")
	if w.Code != 404 || w.Body.Len() != 0 {
		t.Errorf("HEAD unknown: %d with %d bytes", w.Code, w.Body.Len())
	}
}

func TestHandlerKey(t *testing.T) {
	tr, h, _, clk := handlerFixture(t)
	var all strings.Builder
	for i, req := range []struct {
		target string
		header []string
	}{
		{"/ping/locked?key=" + testKey, nil},
		{"/ping/locked/start?rid=x1", []string{KeyHeader, testKey}},
		{"/ping/locked/0?rid=x1&key=" + testKey, nil},
	} {
		clk.Set(after(time.Duration(i) * time.Minute))
		w := do(h, "POST", req.target, "payload", req.header...)
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", req.target, w.Code, w.Body)
		}
		all.WriteString(w.Body.String())
		for k, v := range w.Header() {
			all.WriteString(k + strings.Join(v, ","))
		}
	}
	if strings.Contains(all.String(), testKey) {
		t.Fatal("a response shows the key")
	}
	pings, _ := tr.store.RecentPings(context.Background(), "locked", 10)
	for _, p := range pings {
		if strings.Contains(p.Body+p.Source+p.RunID, testKey) {
			t.Fatalf("a stored ping holds the key: %+v", p)
		}
	}
	if st, _ := tr.State("locked", after(3*time.Minute)); st != StateUp {
		t.Fatalf("state %s", st)
	}
}

// TestHandlerBody: a body up to MaxBody bytes is kept whole; a longer one is
// answered 413 with the limit in Ping-Body-Limit, and nothing is recorded.
func TestHandlerBody(t *testing.T) {
	tr, h, store, clk := handlerFixture(t)
	w := do(h, "POST", "/ping/job", "backup done: 42 GB")
	if w.Code != 200 || w.Header().Get(BodyLimitHeader) != "10000" {
		t.Fatalf("%d, %s %q", w.Code, BodyLimitHeader, w.Header().Get(BodyLimitHeader))
	}
	for _, big := range []string{strings.Repeat("x", MaxBody+1), strings.Repeat("x", 5<<20)} {
		clk.Set(after(time.Minute))
		w = do(h, "POST", "/ping/job/fail", big)
		if w.Code != http.StatusRequestEntityTooLarge || w.Header().Get(BodyLimitHeader) != "10000" {
			t.Fatalf("%d bytes: %d, %s %q", len(big), w.Code, BodyLimitHeader, w.Header().Get(BodyLimitHeader))
		}
		if msg := decodeError(t, w); !strings.Contains(msg, "larger than 10000 bytes") {
			t.Fatalf("error %q", msg)
		}
	}
	// Without a Content-Length (chunked), the body is read up to the limit.
	req := httptest.NewRequest("POST", "/ping/job/fail", io.MultiReader(strings.NewReader(strings.Repeat("z", MaxBody)), strings.NewReader("!")))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body of MaxBody+1 bytes: %d", rec.Code)
	}
	pings, _ := store.RecentPings(context.Background(), "job", 10)
	if len(pings) != 1 || pings[0].Body != "backup done: 42 GB" {
		t.Fatalf("%d pings recorded, want only the first", len(pings))
	}
	if st, _ := tr.State("job", after(time.Minute)); st != StateUp {
		t.Fatalf("a refused failure changed the state to %s", st)
	}
	// A body of exactly MaxBody bytes is kept whole.
	clk.Set(after(2 * time.Minute))
	body := strings.Repeat("é", MaxBody/2)
	if w := do(h, "POST", "/ping/job/log", body); w.Code != 200 {
		t.Fatalf("a body of MaxBody bytes: %d", w.Code)
	}
	if pings, _ := store.RecentPings(context.Background(), "job", 1); len(pings) != 1 || pings[0].Body != body {
		t.Fatal("a body of MaxBody bytes was not kept whole")
	}
	if n := tr.rejected[reasonTooLarge].Load(); n != 3 {
		t.Fatalf("too_large rejections %d, want 3", n)
	}
}

func TestHandlerStoreDown(t *testing.T) {
	tr, h, store, clk := handlerFixture(t)
	if w := do(h, "GET", "/ping/job", ""); w.Code != 200 {
		t.Fatal(w.Code)
	}
	store.setDown(true)
	clk.Set(after(time.Minute))
	w := do(h, "GET", "/ping/job/fail", "")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("%d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if msg := decodeError(t, w); strings.Contains(msg, errStoreDown.Error()) || !strings.Contains(msg, "not recorded") {
		t.Fatalf("error %q", msg)
	}
	if st, _ := tr.State("job", after(time.Minute)); st != StateUp {
		t.Fatalf("an unacknowledged failure changed the state to %s", st)
	}
	store.setDown(false)
	if w := do(h, "GET", "/ping/job/fail", ""); w.Code != 200 {
		t.Fatal(w.Code)
	}
	if st, _ := tr.State("job", after(time.Minute)); st != StateDown {
		t.Fatalf("state %s after the retried failure", st)
	}
}
