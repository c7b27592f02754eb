package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// testBreakers: a breaker opened by the runner survives a restart; an
// operator closes it once, with who and why in the same transaction as the
// audit entry; closing it again, or one that never opened, is refused.
func testBreakers(t *testing.T, open Open) {
	s, c := open(t, "breakers"), ctx(t)
	_, err := s.Breaker(c, "pg-connections")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.CloseBreaker(c, "pg-connections", "alice", "fleet is fine", at(0))
	wantErr(t, err, store.ErrNotFound)

	b := assertd.Breaker{Assert: "pg-connections", Open: true, Group: "breaker/pg-connections/1", GroupLabel: "zone", GroupValue: "b",
		Violating: 5, Instances: 10, OpenedAt: at(0), Reason: "5 of 10 turned violated within 5m"}
	must(t, s.PutBreaker(c, b))
	must(t, s.PutBreaker(c, assertd.Breaker{Assert: "api-latency", ClosedAt: at(-time.Hour), CloseReason: "the share fell back"}))
	s = open(t, "breakers") // a restart
	eq(t, "breaker after a restart", must1[assertd.Breaker](t)(s.Breaker(c, "pg-connections")), b)
	all := must1[[]assertd.Breaker](t)(s.Breakers(c))
	if len(all) != 2 || all[0].Assert != "api-latency" || all[1].Assert != "pg-connections" {
		t.Fatalf("breakers %+v", all)
	}

	_, err = s.CloseBreaker(c, "pg-connections", "alice", " ", at(time.Minute))
	wantErr(t, err, store.ErrInvalid)
	_, err = s.CloseBreaker(c, "pg-connections", "", "checked", at(time.Minute))
	wantErr(t, err, store.ErrInvalid)
	closed := must1[assertd.Breaker](t)(s.CloseBreaker(c, "pg-connections", "alice", "the zone is back", at(time.Minute)))
	want := b
	want.Open, want.ClosedAt, want.ClosedBy, want.CloseReason = false, at(time.Minute), "alice", "the zone is back"
	eq(t, "closed breaker", closed, want)
	eq(t, "stored closed breaker", must1[assertd.Breaker](t)(s.Breaker(c, "pg-connections")), want)
	_, err = s.CloseBreaker(c, "pg-connections", "bob", "again", at(2*time.Minute))
	wantErr(t, err, store.ErrConflict)

	log := must1[[]assertd.AuditEntry](t)(s.AuditLog(c, store.AuditFilter{Action: "breaker.close"}))
	if len(log) != 1 || log[0].Actor != "alice" || log[0].Target != "pg-connections" || log[0].Reason != "the zone is back" ||
		!strings.Contains(log[0].Detail, "5 of 10") {
		t.Fatalf("audit %+v", log)
	}
	sameTime(t, "audit at", log[0].At, at(time.Minute))

	for _, bad := range []assertd.Breaker{
		{Open: true, OpenedAt: at(0), Reason: "x"},
		{Assert: "a", Open: true, Reason: "x"},
		{Assert: "a", Open: true, OpenedAt: at(0)},
		{Assert: "a"},
	} {
		wantErr(t, s.PutBreaker(c, bad), store.ErrInvalid)
	}
}

// testLifecycles: a target's lifecycle state survives a restart, is
// audited, and is removed with an empty state.
func testLifecycles(t *testing.T, open Open) {
	s, c := open(t, "lifecycles"), ctx(t)
	if got := must1[[]assertd.LifecycleOverride](t)(s.Lifecycles(c)); len(got) != 0 {
		t.Fatalf("lifecycles of an empty store: %+v", got)
	}
	up := assertd.LifecycleOverride{Target: assertd.Labels{"instance": "db1", "cluster": "main"}, State: "upgrading", By: "alice", Reason: "pg 17, CHG-12", Updated: at(0)}
	must(t, s.PutLifecycle(c, up))
	must(t, s.PutLifecycle(c, assertd.LifecycleOverride{Target: assertd.Labels{"instance": "db2"}, State: "restart", By: "bob", Reason: "rolling", Updated: at(time.Minute)}))
	s = open(t, "lifecycles") // a restart
	got := must1[[]assertd.LifecycleOverride](t)(s.Lifecycles(c))
	if len(got) != 2 || got[1].Target["instance"] != "db2" {
		t.Fatalf("lifecycles %+v", got)
	}
	eq(t, "the first override", got[0], up)
	up.State, up.Updated = "available", at(2*time.Minute)
	must(t, s.PutLifecycle(c, up))
	must(t, s.PutLifecycle(c, assertd.LifecycleOverride{Target: assertd.Labels{"instance": "db2"}, By: "bob", Reason: "done", Updated: at(3 * time.Minute)}))
	got = must1[[]assertd.LifecycleOverride](t)(s.Lifecycles(c))
	if len(got) != 1 || got[0].State != "available" {
		t.Fatalf("after the changes: %+v", got)
	}
	log := must1[[]assertd.AuditEntry](t)(s.AuditLog(c, store.AuditFilter{Action: "lifecycle.set"}))
	if len(log) != 4 || log[0].Actor != "bob" || log[0].Detail != "" || log[3].Detail != "upgrading" || log[3].Target != `{cluster="main", instance="db1"}` {
		t.Fatalf("audit %+v", log)
	}
	wantErr(t, s.PutLifecycle(c, assertd.LifecycleOverride{State: "upgrading", By: "alice", Updated: at(0)}), store.ErrInvalid)
	wantErr(t, s.PutLifecycle(c, assertd.LifecycleOverride{Target: assertd.Labels{"a": "b"}, State: "upgrading", Updated: at(0)}), store.ErrInvalid)
}
