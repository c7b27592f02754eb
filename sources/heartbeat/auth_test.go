package heartbeat

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/internal/fakeclock"
)

const (
	projectKey = "pk-7Qw9xZr2LmN4vB8s"
	jobUUID    = "0b7d2f4e-9c1a-4f5e-8d3b-2a6c9e1f7b40"
)

// authFixture: "own" (its own key testKey), "plain" (no key of its own),
// "by-uuid" (uuid jobUUID, no key), "open" (public), and the project ping
// key projectKey.
func authFixture(t testing.TB, pings asserts.Pings) (*Tracker, http.Handler, *fakeclock.Clock) {
	t.Helper()
	own := periodHB("own", time.Hour, 0, 0)
	own.KeyEnv, own.Public = "OWN_KEY", false
	plain := periodHB("plain", time.Hour, 0, 0)
	plain.Public = false
	byUUID := periodHB("by-uuid", time.Hour, 0, 0)
	byUUID.Public, byUUID.UUID = false, jobUUID
	open := periodHB("open", time.Hour, 0, 0)
	env := map[string]string{"OWN_KEY": testKey, "PING_KEY": projectKey}
	tr, err := New(context.Background(), []*asserts.CompiledHeartbeat{own, plain, byUUID, open}, pings, NewMemoryStore(), Options{
		Now:       func() time.Time { return t0 },
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	clk := fakeclock.New(t0)
	return tr, tr.Handler(clk.Now), clk
}

// TestPingAuth: every URL form against every kind of heartbeat, with and
// without the project ping key: who may ping is exactly who holds a key,
// the uuid, or anyone for a public heartbeat; nothing else changes a state.
func TestPingAuth(t *testing.T) {
	withKey := asserts.Pings{KeyEnv: "PING_KEY"}
	tests := []struct {
		pings  asserts.Pings
		target string
		header []string
		code   int
		hb     string // the heartbeat that must be up after it (when 2xx)
	}{
		// By name, with the heartbeat's own key.
		{withKey, "/ping/own", nil, 401, ""},
		{withKey, "/ping/own?key=" + testKey, nil, 200, "own"},
		{withKey, "/ping/own", []string{KeyHeader, testKey}, 200, "own"},
		{withKey, "/ping/own?key=nope", nil, 403, ""},
		// By name, with the project key (it opens every heartbeat).
		{withKey, "/ping/own?key=" + projectKey, nil, 200, "own"},
		{withKey, "/ping/plain?key=" + projectKey, nil, 200, "plain"},
		{withKey, "/ping/plain/start", []string{KeyHeader, projectKey}, 200, "plain"},
		{withKey, "/ping/plain?key=" + testKey, nil, 403, ""},
		{withKey, "/ping/plain", nil, 401, ""},
		{asserts.Pings{}, "/ping/plain?key=" + projectKey, nil, 401, ""},
		// The project key in the path, Healthchecks.io's slug URLs.
		{withKey, "/ping/" + projectKey + "/plain", nil, 200, "plain"},
		{withKey, "/ping/" + projectKey + "/own/start", nil, 200, "own"},
		{withKey, "/ping/" + projectKey + "/by-uuid/0", nil, 200, "by-uuid"},
		{withKey, "/ping/" + projectKey + "/plain/log", nil, 200, ""},
		{withKey, "/ping/" + projectKey + "/nope", nil, 404, ""},
		{withKey, "/ping/wrong-key-0123456789/plain", nil, 403, ""},
		{withKey, "/ping/wrong-key-0123456789/nope", nil, 403, ""}, // a wrong key learns nothing of names
		{withKey, "/ping/" + testKey + "/own/fail", nil, 403, ""},  // a heartbeat's own key is not the project's
		{asserts.Pings{}, "/ping/" + projectKey + "/plain", nil, 404, ""},
		{withKey, "/ping/" + projectKey + "/plain/nope", nil, 400, ""},
		// By uuid: the UUID is the credential, any case.
		{asserts.Pings{}, "/ping/" + jobUUID, nil, 200, "by-uuid"},
		{asserts.Pings{}, "/ping/" + strings.ToUpper(jobUUID) + "/start", nil, 200, "by-uuid"},
		{asserts.Pings{}, "/ping/0b7d2f4e-9c1a-4f5e-8d3b-2a6c9e1f7b41", nil, 404, ""},
		{asserts.Pings{}, "/ping/by-uuid", nil, 401, ""}, // its name is no secret
		{withKey, "/ping/by-uuid?key=" + projectKey, nil, 200, "by-uuid"},
		// Public: anyone.
		{asserts.Pings{}, "/ping/open", nil, 200, "open"},
		{asserts.Pings{}, "/ping/open/3", nil, 200, "open"},
	}
	for _, tc := range tests {
		name := strings.ReplaceAll(strings.ReplaceAll(tc.target, projectKey, "PROJECT"), testKey, "OWN")
		t.Run(name, func(t *testing.T) {
			tr, h, _ := authFixture(t, tc.pings)
			w := do(h, "POST", tc.target, "", tc.header...)
			if w.Code != tc.code {
				t.Fatalf("%d, want %d: %s", w.Code, tc.code, w.Body)
			}
			if got := w.Body.String() + strings.Join(w.Header().Values("Content-Type"), ""); strings.Contains(got, projectKey) || strings.Contains(got, testKey) || strings.Contains(got, jobUUID) {
				t.Fatalf("the answer repeats a secret: %s", got)
			}
			for _, hb := range tr.Names() {
				rec, _ := tr.Record(hb)
				if pinged := !rec.LastPing.IsZero(); pinged != (hb == tc.hb) {
					t.Errorf("heartbeat %s pinged: %v, want %v", hb, pinged, hb == tc.hb)
				}
			}
		})
	}
}

// TestPingLog: /log records a ping with its body and changes nothing else:
// not the state, not the last ping, not a pause.
func TestPingLog(t *testing.T) {
	tr, h, clk := authFixture(t, asserts.Pings{})
	if w := do(h, "POST", "/ping/open", ""); w.Code != 200 {
		t.Fatal(w.Code)
	}
	ctx := context.Background()
	clk.Set(after(2 * time.Hour)) // past period and grace: down
	if err := tr.Pause(ctx, "open"); err != nil {
		t.Fatal(err)
	}
	if w := do(h, "POST", "/ping/open/log", "disk 91% full"); w.Code != 200 {
		t.Fatal(w.Code, w.Body)
	}
	if w := do(h, "POST", "/ping/"+jobUUID+"/log", "note"); w.Code != 200 {
		t.Fatal(w.Code, w.Body)
	}
	rec, _ := tr.Record("open")
	if !rec.Paused || !rec.LastPing.Equal(t0) {
		t.Fatalf("a log ping changed the record: %+v", rec)
	}
	if st, _ := tr.State("by-uuid", clk.Now()); st != StateNew {
		t.Fatalf("by-uuid is %s after a log ping, want new", st)
	}
	pings, _ := tr.store.RecentPings(ctx, "open", 5)
	if len(pings) != 2 || pings[0].Kind != "log" || pings[0].Body != "disk 91% full" {
		t.Fatalf("pings %+v", pings)
	}
	if err := tr.Resume(ctx, "open"); err != nil {
		t.Fatal(err)
	}
	if st, _ := tr.State("open", clk.Now()); st != StateDown {
		t.Fatalf("open is %s, want down: a log ping is not a success", st)
	}
}

// TestProjectKeyRules: a short or unsafe project key, or one equal to a
// heartbeat's name, is refused when the heartbeats are declared.
func TestProjectKeyRules(t *testing.T) {
	for key, want := range map[string]string{
		"short":                   "at least 16",
		"has/slash-0123456789":    "at least 16",
		"has space 0123456789ab":  "at least 16",
		"abcdefghijklmnopqrstuvw": "",
		"plain-heartbeat-name-16": "is the name of heartbeat",
	} {
		hb := periodHB("plain-heartbeat-name-16", time.Hour, 0, 0)
		_, err := New(context.Background(), []*asserts.CompiledHeartbeat{hb}, asserts.Pings{KeyEnv: "K"}, NewMemoryStore(), Options{
			LookupEnv: func(string) (string, bool) { return key, true },
		})
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", key, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", key, err, want)
		case err != nil && want != "is the name of heartbeat" && strings.Contains(err.Error(), key):
			t.Errorf("the error shows the key: %v", err)
		}
	}
}

// TestPublicIsLogged: each public heartbeat is named in a warning at start.
func TestPublicIsLogged(t *testing.T) {
	var buf strings.Builder
	locked := periodHB("locked", time.Hour, 0, 0)
	locked.KeyEnv, locked.Public = "K", false
	_, err := New(context.Background(), []*asserts.CompiledHeartbeat{periodHB("open", time.Hour, 0, 0), locked}, asserts.Pings{}, NewMemoryStore(), Options{
		LookupEnv: func(string) (string, bool) { return testKey, true },
		Logger:    slog.New(slog.NewTextHandler(&buf, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "heartbeat=open") || strings.Contains(out, testKey) {
		t.Fatalf("log:\n%s", out)
	}
}
