package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
)

func TestNewErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"EMPTY_KEY": "  ", "GOOD_KEY": "hunter2-secret"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	withKey := func(envName, file string) *asserts.CompiledHeartbeat {
		h := periodHB("backup", time.Hour, 0, 0)
		h.KeyEnv, h.KeyFile, h.Public = envName, file, false
		return h
	}
	tests := []struct {
		name string
		hbs  []*asserts.CompiledHeartbeat
		want string
	}{
		{"nil", []*asserts.CompiledHeartbeat{nil}, "heartbeat #1 is nil"},
		{"bad name", []*asserts.CompiledHeartbeat{periodHB("a b", time.Hour, 0, 0)}, `heartbeat name "a b" may only hold`},
		{"twice", []*asserts.CompiledHeartbeat{periodHB("a", time.Hour, 0, 0), periodHB("a", time.Hour, 0, 0)}, `heartbeat "a" is declared twice`},
		{"no period", []*asserts.CompiledHeartbeat{periodHB("a", 0, 0, 0)}, `heartbeat "a" has neither a period nor a schedule`},
		{"key_env unset", []*asserts.CompiledHeartbeat{withKey("NO_SUCH_KEY", "")}, `heartbeat "backup": key_env NO_SUCH_KEY is not set in assertd's environment`},
		{"key_env empty", []*asserts.CompiledHeartbeat{withKey("EMPTY_KEY", "")}, `heartbeat "backup": key_env EMPTY_KEY is empty`},
		{"key_file missing", []*asserts.CompiledHeartbeat{withKey("", filepath.Join(dir, "nope"))}, `heartbeat "backup": key_file: open ` + filepath.Join(dir, "nope")},
		{"key_file empty", []*asserts.CompiledHeartbeat{withKey("", empty)}, `heartbeat "backup": key_file ` + empty + ` is empty`},
		{"both", []*asserts.CompiledHeartbeat{withKey("GOOD_KEY", empty)}, `heartbeat "backup": set key_env or key_file, not both`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(ctx, tc.hbs, asserts.Pings{}, NewMemoryStore(), Options{LookupEnv: lookup})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the key: %v", err)
			}
		})
	}
	if _, err := New(ctx, nil, asserts.Pings{}, nil, Options{}); err == nil {
		t.Fatal("New without a store")
	}
}

func TestKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte("file-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := periodHB("a", time.Hour, 0, 0)
	a.KeyEnv, a.Public = "A_KEY", false
	b := periodHB("b", time.Hour, 0, 0)
	b.KeyFile, b.Public = file, false
	c := periodHB("c", time.Hour, 0, 0)
	tr, err := New(context.Background(), []*asserts.CompiledHeartbeat{a, b, c}, asserts.Pings{}, NewMemoryStore(), Options{
		LookupEnv: func(k string) (string, bool) { return " env-key\n", k == "A_KEY" },
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key string
		ok        bool
	}{
		{"a", "env-key", true}, {"a", "env-ke", false}, {"a", "env-key2", false}, {"a", "", false},
		{"b", "file-key", true}, {"b", "env-key", false},
		{"c", "", true}, {"c", "anything", true},
		{"nope", "", false},
	} {
		if got := tr.CheckKey(tc.name, tc.key); got != tc.ok {
			t.Errorf("CheckKey(%s, %q) = %v", tc.name, tc.key, got)
		}
	}
	if !tr.NeedsKey("a") || !tr.NeedsKey("b") || tr.NeedsKey("c") || tr.NeedsKey("nope") {
		t.Error("NeedsKey")
	}
	if got := strings.Join(tr.Names(), ","); got != "a,b,c" {
		t.Errorf("Names = %s", got)
	}
}

// TestRunsSurviveRestart: two runs in progress; a new Tracker over the same
// store still knows both, so ending the older one leaves the younger one
// setting the deadline.
func TestRunsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	hb := periodHB("job", time.Hour, 5*time.Minute, 30*time.Minute)
	tr := newTracker(t, store, t0, hb)
	for _, p := range []assertd.Ping{
		{Heartbeat: "job", Kind: assertd.PingStart, RunID: "a", At: after(0)},
		{Heartbeat: "job", Kind: assertd.PingStart, RunID: "b", At: after(10 * time.Minute)},
		{Heartbeat: "job", Kind: assertd.PingStart, RunID: "c", At: after(12 * time.Minute)},
		{Heartbeat: "job", Kind: assertd.PingSuccess, RunID: "c", At: after(13 * time.Minute)},
	} {
		if err := tr.Ping(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	rec, _ := tr.Record("job")
	if !rec.LastStart.Equal(after(0)) || rec.StartRunID != "a" {
		t.Fatalf("record holds run %q at %s, want the oldest (a at %s)", rec.StartRunID, rec.LastStart, after(0))
	}
	re := newTracker(t, store, t0, hb)
	if err := re.Ping(ctx, assertd.Ping{Heartbeat: "job", Kind: assertd.PingSuccess, RunID: "a", At: after(20 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if next, _ := re.NextDeadline("job", after(20*time.Minute)); !next.Equal(after(40 * time.Minute)) {
		t.Fatalf("deadline after reload %s, want b's %s", next, after(40*time.Minute))
	}
	if st, _ := re.State("job", after(40*time.Minute)); st != StateRunningTooLong {
		t.Fatalf("state %s, want running-too-long", st)
	}
}

func TestOpenRunsBounded(t *testing.T) {
	ctx := context.Background()
	tr := newTracker(t, NewMemoryStore(), t0, periodHB("job", time.Hour, 0, time.Hour))
	for i := range maxOpenRuns + 10 {
		if err := tr.Ping(ctx, assertd.Ping{Heartbeat: "job", Kind: assertd.PingStart, RunID: fmt.Sprintf("run-%d", i), At: after(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	e := tr.entry("job")
	if len(e.runs) != maxOpenRuns || !e.runs[0].start.Equal(t0) {
		t.Fatalf("%d runs tracked, oldest %s; want %d, oldest kept", len(e.runs), e.runs[0].start, maxOpenRuns)
	}
}

// TestStoreFailure: a ping the store does not take changes nothing.
func TestStoreFailure(t *testing.T) {
	ctx := context.Background()
	store := &flakyStore{mem: NewMemoryStore()}
	tr := newTracker(t, store, t0, periodHB("job", time.Hour, 0, 0))
	if err := tr.Ping(ctx, assertd.Ping{Heartbeat: "job", Kind: assertd.PingSuccess, At: after(0)}); err != nil {
		t.Fatal(err)
	}
	store.setDown(true)
	err := tr.Ping(ctx, assertd.Ping{Heartbeat: "job", Kind: assertd.PingFail, At: after(time.Minute)})
	if !errors.Is(err, errStoreDown) {
		t.Fatalf("Ping with the store down: %v", err)
	}
	if err := tr.Pause(ctx, "job"); !errors.Is(err, errStoreDown) {
		t.Fatalf("Pause with the store down: %v", err)
	}
	if st, _ := tr.State("job", after(time.Minute)); st != StateUp {
		t.Fatalf("state %s after an unrecorded failure, want up", st)
	}
	if _, err := New(ctx, []*asserts.CompiledHeartbeat{periodHB("other", time.Hour, 0, 0)}, asserts.Pings{}, store, Options{}); !errors.Is(err, errStoreDown) {
		t.Fatalf("New with the store down: %v", err)
	}
}

func TestMemoryStore(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryStore()
	for i := range memoryKeep + 50 {
		if err := m.AddPing(ctx, assertd.Ping{Heartbeat: "a", Kind: assertd.PingSuccess, At: after(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := m.RecentPings(ctx, "a", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != memoryKeep || got[0].ID != memoryKeep+50 || !got[0].At.After(got[1].At) {
		t.Fatalf("kept %d, newest id %d", len(got), got[0].ID)
	}
	if got, _ := m.RecentPings(ctx, "a", 3); len(got) != 3 || got[0].ID != memoryKeep+50 {
		t.Fatalf("limit 3: %d", len(got))
	}
	if got, _ := m.RecentPings(ctx, "b", 3); len(got) != 0 {
		t.Fatalf("no pings: %d", len(got))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.SaveHeartbeat(cctx, assertd.HeartbeatRecord{Name: "a"}); err == nil {
		t.Fatal("SaveHeartbeat with a cancelled context")
	}
}

func TestBoundBody(t *testing.T) {
	long := strings.Repeat("é", MaxBody) // 2 bytes each: cut inside a character
	got, cut := boundBody(long, false)
	if !cut || !strings.HasSuffix(got, TruncatedMarker) || len(got) > MaxBody+len(TruncatedMarker) {
		t.Fatalf("len %d, cut %v", len(got), cut)
	}
	if body := strings.TrimSuffix(got, TruncatedMarker); strings.ContainsRune(body, '\uFFFD') || len(body) != MaxBody {
		t.Fatalf("cut badly: len %d", len(body))
	}
	got, cut = boundBody("a\x00b\xffc", false)
	if cut || got != "a\uFFFDb\uFFFDc" {
		t.Fatalf("sanitize: %q %v", got, cut)
	}
	if got, _ := boundBody(strings.Repeat("\xff", 3*MaxBody), false); len(got) > MaxBody+len(TruncatedMarker) {
		t.Fatalf("replacement characters grew the body to %d", len(got))
	}
}

func TestConcurrentPings(t *testing.T) {
	ctx := context.Background()
	tr := newTracker(t, NewMemoryStore(), t0, periodHB("a", time.Hour, 0, time.Hour), periodHB("b", time.Hour, 0, 0))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				name := []string{"a", "b"}[g%2]
				kind := []assertd.PingKind{assertd.PingStart, assertd.PingSuccess}[i%2]
				if err := tr.Ping(ctx, assertd.Ping{Heartbeat: name, Kind: kind, At: after(time.Duration(i) * time.Second)}); err != nil {
					t.Error(err)
				}
				tr.Status(name, after(time.Minute))
			}
		})
	}
	wg.Wait()
	if st, _ := tr.State("a", after(time.Minute)); st != StateUp {
		t.Fatalf("state %s", st)
	}
}
