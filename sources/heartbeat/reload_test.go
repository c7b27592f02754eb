package heartbeat

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
)

func every(name string, period, grace time.Duration, keyEnv string) *asserts.CompiledHeartbeat {
	return &asserts.CompiledHeartbeat{
		Heartbeat: &asserts.Heartbeat{Name: name, Period: assertd.Duration(period), Grace: assertd.Duration(grace), KeyEnv: keyEnv, Public: keyEnv == ""},
		Period:    period, Grace: grace,
	}
}

// Swap puts a new set of heartbeats in force: the new one answers its pings,
// the changed one keeps its pings under its new period and key, the removed
// one is unknown. Prepare alone changes nothing.
func TestSwapPutsTheNewHeartbeatsInForce(t *testing.T) {
	ctx := context.Background()
	now := t0
	env := map[string]string{"KEY": "key-one"}
	st := NewMemoryStore()
	tr, err := New(ctx, []*asserts.CompiledHeartbeat{every("a", time.Hour, time.Minute, ""), every("gone", time.Hour, 0, "")}, asserts.Pings{}, st,
		Options{Now: func() time.Time { return now }, LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	h := tr.Handler(func() time.Time { return now })
	ping := func(path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code
	}
	if code := ping("/ping/a"); code != http.StatusOK {
		t.Fatalf("ping a: %d", code)
	}
	next := []*asserts.CompiledHeartbeat{every("a", 5*time.Second, time.Second, "KEY"), every("new", time.Hour, 0, "")}

	// A key that cannot be read: refused, nothing changes.
	delete(env, "KEY")
	if _, err := tr.Prepare(ctx, next, asserts.Pings{}); err == nil {
		t.Fatal("Prepare took a heartbeat whose key is unset")
	}
	env["KEY"] = "key-one"
	n, err := tr.Prepare(ctx, next, asserts.Pings{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Known("new") || !tr.Known("gone") || tr.NeedsKey("a") || ping("/ping/new") != http.StatusNotFound {
		t.Fatal("Prepare changed the heartbeats in force")
	}
	if recs, _ := st.LoadHeartbeats(ctx); len(recs) != 2 {
		t.Fatalf("Prepare stored %d records, want the 2 there were", len(recs))
	}

	now = t0.Add(10 * time.Second)
	retire := tr.Swap(ctx, n)
	if !tr.Known("new") || !tr.Known("gone") {
		t.Fatal("before retire, the new and the removed heartbeat are known")
	}
	retire()
	if got := tr.Names(); len(got) != 2 || got[0] != "a" || got[1] != "new" {
		t.Fatalf("names %v", got)
	}
	if code := ping("/ping/gone"); code != http.StatusNotFound {
		t.Errorf("ping of a removed heartbeat: %d, want 404", code)
	}
	if code := ping("/ping/a"); code != http.StatusUnauthorized {
		t.Errorf("ping of a without its new key: %d, want 401", code)
	}
	// a keeps its last ping (at t0) under its new period: 10s later it is down.
	if s, _ := tr.Status("a", now); s.State != "down" || !s.LastPing.Equal(t0) {
		t.Errorf("a is %+v, want down since its ping at t0", s)
	}
	if recs, _ := st.LoadHeartbeats(ctx); len(recs) != 3 {
		t.Errorf("%d records stored, want 3 (new stored at Swap)", len(recs))
	}
	if code := ping("/ping/new"); code != http.StatusOK {
		t.Errorf("ping new: %d", code)
	}
	if code := ping("/ping/a?key=key-one"); code != http.StatusOK {
		t.Errorf("ping a with its key: %d", code)
	}
	if s, _ := tr.Status("a", now); s.State != "up" {
		t.Errorf("a is %s after its ping", s.State)
	}
}
