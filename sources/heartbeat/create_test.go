package heartbeat

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/internal/fakeclock"
)

// patternTracker: pattern "backup" (create: prefix backup-, max 2, period
// 1h, grace 10m) and the project ping key, over st.
func patternTracker(t *testing.T, st Store, clk *fakeclock.Clock) (*Tracker, http.Handler) {
	t.Helper()
	p := periodHB("backup", time.Hour, 10*time.Minute, 0)
	p.Public, p.Create, p.CreateMax = false, &asserts.Create{Prefix: "backup-", Max: 2}, 2
	tr, err := New(context.Background(), []*asserts.CompiledHeartbeat{p}, asserts.Pings{KeyEnv: "PING_KEY"}, st, Options{
		Now:       clk.Now,
		LookupEnv: func(string) (string, bool) { return projectKey, true },
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr, tr.Handler(clk.Now)
}

// TestCreate: ?create=1 with the project key creates a heartbeat from the
// pattern (201, then 200), up to its max; without create=1, without the
// project key or outside the prefix nothing is created. The pattern reads
// as its worst heartbeat, and created heartbeats survive a restart.
func TestCreate(t *testing.T) {
	clk := fakeclock.New(t0)
	st := NewMemoryStore()
	tr, h := patternTracker(t, st, clk)
	if s, _ := tr.Status("backup", clk.Now()); s.State != string(StateNew) || Certain(s) {
		t.Fatalf("pattern without heartbeats: %+v", s)
	}
	steps := []struct {
		target string
		code   int
	}{
		{"/ping/" + projectKey + "/backup-db1", 404},                // no create=1
		{"/ping/backup-db1?create=1&key=" + projectKey, 404},        // by name: never creates
		{"/ping/wrong-key-0123456789/backup-db1?create=1", 403},     // wrong key
		{"/ping/" + projectKey + "/other-db1?create=1", 404},        // no pattern
		{"/ping/" + projectKey + "/backup-?create=1", 404},          // the prefix alone
		{"/ping/" + projectKey + "/backup?create=1", 400},           // the pattern takes no pings
		{"/ping/" + projectKey + "/backup-db1?create=1", 201},       // created
		{"/ping/" + projectKey + "/backup-db1?create=1", 200},       // exists
		{"/ping/" + projectKey + "/backup-db2/start?create=1", 201}, // created, run started
		{"/ping/" + projectKey + "/backup-db3?create=1", 403},       // past max
		{"/ping/backup-db1/fail?key=" + projectKey, 200},            // created ones take the project key by name
	}
	for _, s := range steps {
		if w := do(h, "POST", s.target, ""); w.Code != s.code {
			t.Fatalf("%s: %d, want %d: %s", s.target, w.Code, s.code, w.Body)
		}
	}
	if got := tr.Names(); len(got) != 3 || got[0] != "backup" || got[1] != "backup-db1" || got[2] != "backup-db2" {
		t.Fatalf("names %v", got)
	}
	if n := tr.rejected[reasonLimit].Load(); n != 1 {
		t.Fatalf("limit rejections %d", n)
	}
	// backup-db1 failed: the pattern is down, in db1's words.
	s, _ := tr.Status("backup", clk.Now())
	if s.State != string(StateDown) || s.Name != "backup-db1" || s.LastExit != 1 {
		t.Fatalf("pattern: %+v", s)
	}
	if err := tr.Ping(context.Background(), pingAt("backup-db1", clk.Now())); err != nil {
		t.Fatal(err)
	}
	// db1 up, db2 started: the pattern is started until db2's deadline.
	if s, _ := tr.Status("backup", clk.Now()); s.State != string(StateStarted) || s.Name != "backup-db2" {
		t.Fatalf("pattern: %+v", s)
	}
	if next, ok := tr.NextDeadline("backup", clk.Now()); !ok || !next.Equal(t0.Add(time.Hour)) {
		t.Fatalf("next deadline %v %v", next, ok)
	}

	// A new Tracker over the same store follows both again.
	clk.Set(t0.Add(30 * time.Minute))
	tr2, h2 := patternTracker(t, st, clk)
	if got := tr2.Names(); len(got) != 3 {
		t.Fatalf("after a restart: %v", got)
	}
	if w := do(h2, "POST", "/ping/"+projectKey+"/backup-db3?create=1", ""); w.Code != http.StatusForbidden {
		t.Fatalf("past max after a restart: %d", w.Code)
	}
	if s, _ := tr2.State("backup-db1", clk.Now()); s != StateUp {
		t.Fatalf("backup-db1 after a restart: %s", s)
	}
}

// TestCreateSurvivesReload: created heartbeats stay across a reload that
// keeps their pattern, and go when it is removed.
func TestCreateSurvivesReload(t *testing.T) {
	clk := fakeclock.New(t0)
	st := NewMemoryStore()
	tr, h := patternTracker(t, st, clk)
	if w := do(h, "POST", "/ping/"+projectKey+"/backup-db1?create=1", ""); w.Code != 201 {
		t.Fatal(w.Code)
	}
	ctx := context.Background()
	p := periodHB("backup", 2*time.Hour, 0, 0)
	p.Public, p.Create, p.CreateMax = false, &asserts.Create{Prefix: "backup-"}, 100
	n, err := tr.Prepare(ctx, []*asserts.CompiledHeartbeat{p}, asserts.Pings{KeyEnv: "PING_KEY"})
	if err != nil {
		t.Fatal(err)
	}
	// Created between Prepare and Swap: kept too.
	if w := do(h, "POST", "/ping/"+projectKey+"/backup-db2?create=1", ""); w.Code != 201 {
		t.Fatal(w.Code)
	}
	tr.Swap(ctx, n)()
	if got := tr.Names(); len(got) != 3 {
		t.Fatalf("after the reload: %v", got)
	}
	// The new period applies: 90 minutes after its ping db1 is still up.
	if s, _ := tr.State("backup-db1", t0.Add(90*time.Minute)); s != StateUp {
		t.Fatalf("backup-db1 is %s under the new period", s)
	}
	n, err = tr.Prepare(ctx, nil, asserts.Pings{})
	if err != nil {
		t.Fatal(err)
	}
	tr.Swap(ctx, n)()
	if got := tr.Names(); len(got) != 0 {
		t.Fatalf("after the pattern was removed: %v", got)
	}
}

func pingAt(name string, at time.Time) assertd.Ping {
	return assertd.Ping{Heartbeat: name, Kind: assertd.PingSuccess, At: at}
}
