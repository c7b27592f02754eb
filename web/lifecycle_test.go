package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// A lifecycle override set through the API (admin, reason required,
// audited) is listed and holds back the action on its target's violation;
// removing it lets the next evaluation act.
func TestLifecycleThroughTheAPI(t *testing.T) {
	e := newEnv(t)
	e.seed()
	for _, tc := range []struct {
		tok, body, field string
		code             int
	}{
		{readSecret, `{"target": {"instance": "db1"}, "state": "upgrading", "reason": "x"}`, "", 403},
		{adminSecret, `{"target": {}, "state": "upgrading", "reason": "x"}`, "target", 400},
		{adminSecret, `{"target": {"instance": "db1"}, "state": "exploded", "reason": "x"}`, "state", 400},
		{adminSecret, `{"target": {"instance": "db1"}, "state": "upgrading"}`, "reason", 400},
	} {
		if code, body := e.do("PUT", "/api/v1/lifecycle", tc.tok, tc.body); code != tc.code || !strings.Contains(body, `"field": "`+tc.field+`"`) && tc.field != "" {
			t.Errorf("%s: %d %s, want %d on %s", tc.body, code, body, tc.code, tc.field)
		}
	}
	if code, body := e.do("PUT", "/api/v1/lifecycle", adminSecret, `{"target": {"instance": "db1"}, "state": "upgrading", "reason": "pg 17 upgrade, CHG-12"}`); code != 200 {
		t.Fatalf("set: %d %s", code, body)
	}
	var lc struct {
		Lifecycles []struct {
			Target assertd.Labels `json:"target"`
			State  string         `json:"state"`
		} `json:"lifecycles"`
	}
	e.getJSON("/api/v1/lifecycle", &lc)
	if len(lc.Lifecycles) != 1 || lc.Lifecycles[0].Target["instance"] != "db1" || lc.Lifecycles[0].State != "upgrading" {
		t.Fatalf("lifecycles %+v", lc)
	}
	// It is stored: a new engine on the same store (a restart) has it.
	if lcs := e.restart().Engine().Lifecycles(); len(lcs) != 1 || lcs[0].State != "upgrading" || lcs[0].By != "alice" || lcs[0].Target["instance"] != "db1" {
		t.Fatalf("after a restart: %+v", lcs)
	}
	log, err := e.st.AuditLog(e.ctx, store.AuditFilter{Action: "lifecycle.set"})
	if err != nil || len(log) != 1 || log[0].Actor != "alice" || log[0].Reason != "pg 17 upgrade, CHG-12" || log[0].Detail != "upgrading" {
		t.Fatalf("audit %+v %v", log, err)
	}
	// db1 runs out of connections while upgrading (past the breaker's
	// window of db3's violation): recorded, not acted on.
	e.clock.Add(6 * time.Minute)
	e.sample("pg_free_connections", 2, "instance", "db1", "cluster", "main")
	e.eval()
	db1 := e.instance("pg-connections", "db1")
	if db1.Lifecycle != "upgrading" || db1.State != assertd.Violated {
		t.Fatalf("db1 while upgrading: %+v", db1)
	}
	if rs, _ := e.st.Runs(e.ctx, store.RunFilter{Fingerprint: db1.Fingerprint}); len(rs) != 0 {
		t.Fatalf("a run started during the expected disruption: %+v", rs)
	}
	if code, body := e.do("PUT", "/api/v1/lifecycle", adminSecret, `{"target": {"instance": "db1"}, "state": "", "reason": "upgrade done"}`); code != 200 || !strings.Contains(body, `"lifecycles": []`) {
		t.Fatalf("remove: %d %s", code, body)
	}
	e.clock.Add(15 * time.Second)
	e.sample("pg_free_connections", 2, "instance", "db1", "cluster", "main")
	e.eval()
	if rs, _ := e.st.Runs(e.ctx, store.RunFilter{Fingerprint: db1.Fingerprint}); len(rs) != 1 {
		t.Fatalf("after the upgrade: %d runs, state %s: %s", len(rs), e.instance("pg-connections", "db1").State, e.instance("pg-connections", "db1").Reason)
	}
}
