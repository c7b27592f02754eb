// Package storetest is the conformance suite of store.Store: one set of
// tests that every implementation must pass (the SQLite and the PostgreSQL
// stores run it in their tests). Times are fixed and injected; nothing reads
// the clock.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// Open opens the database named db (letters, digits and _), creating it
// empty the first time; opening the same name again opens the same data, as
// a restart would. It must register the store's Close with t.Cleanup.
type Open func(t *testing.T, db string) store.Store

// T0 is the suite's fixed "now": it has microseconds, so a round-trip that
// loses them fails.
var T0 = time.Date(2026, 3, 14, 9, 26, 53, 589793000, time.UTC)

func at(d time.Duration) time.Time { return T0.Add(d) }

// Run runs the whole suite against the stores open makes.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Open)
	}{
		{"InstanceRoundTrip", testInstanceRoundTrip},
		{"UncleanInput", testUncleanInput},
		{"RestartReloadsState", testRestartReloadsState},
		{"TransitionHistory", testTransitionHistory},
		{"CommitAtomic", testCommitAtomic},
		{"CommitIdempotent", testCommitIdempotent},
		{"CommitInvalid", testCommitInvalid},
		{"WriteAheadDecisions", testWriteAheadDecisions},
		{"RunLifecycle", testRunLifecycle},
		{"InterruptOnRestart", testInterruptOnRestart},
		{"RunStats", testRunStats},
		{"Locks", testLocks},
		{"LocksConcurrent", testLocksConcurrent},
		{"Approvals", testApprovals},
		{"OutboxLifecycle", testOutboxLifecycle},
		{"OutboxRetryBackoffDead", testOutboxRetryBackoffDead},
		{"OutboxClaimExpiry", testOutboxClaimExpiry},
		{"OutboxConcurrentClaim", testOutboxConcurrentClaim},
		{"OutboxRelease", testOutboxRelease},
		{"Heartbeats", testHeartbeats},
		{"PingChains", testPingChains},
		{"Silences", testSilences},
		{"Settings", testSettings},
		{"Audit", testAudit},
		{"Breakers", testBreakers},
		{"Lifecycles", testLifecycles},
		{"Compact", testCompact},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// must fails the test at once on an error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func must1[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want one that is %v", err, target)
	}
}

// eq compares after normalising times to UTC (so time.Time's location
// pointer does not matter) and reports a readable difference.
func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(norm(got), norm(want)) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// norm returns v with every time.Time in UTC, for comparison.
func norm(v any) any {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() {
		return v
	}
	out := reflect.New(rv.Type()).Elem()
	normValue(out, rv)
	return out.Interface()
}

var timeType = reflect.TypeOf(time.Time{})

func normValue(dst, src reflect.Value) {
	if src.Type() == timeType {
		t := src.Interface().(time.Time)
		if !t.IsZero() {
			t = t.UTC()
		}
		dst.Set(reflect.ValueOf(t))
		return
	}
	switch src.Kind() {
	case reflect.Struct:
		for i := range src.NumField() {
			if dst.Field(i).CanSet() {
				normValue(dst.Field(i), src.Field(i))
			}
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeSlice(src.Type(), src.Len(), src.Len()))
		for i := range src.Len() {
			normValue(dst.Index(i), src.Index(i))
		}
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.New(src.Type().Elem()))
		normValue(dst.Elem(), src.Elem())
	default:
		dst.Set(src)
	}
}

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %s, want %s", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
}

func instance(assert string, l assertd.Labels, state assertd.State, since time.Time) assertd.Instance {
	return assertd.Instance{
		Assert: assert, Fingerprint: l.Fingerprint(), Labels: l, State: state, Since: since,
		Reason: fmt.Sprintf("%s since %s", state, since.Format(time.TimeOnly)), Values: map[string]float64{"p99_ms": 61.5},
		LastEval: since,
	}
}

// transition builds the change that moves in to state `to` at time when.
func transition(in assertd.Instance, to assertd.State, when time.Time) (assertd.Instance, store.Change) {
	tr := assertd.Transition{
		Assert: in.Assert, Fingerprint: in.Fingerprint, Labels: in.Labels, From: in.State, To: to, At: when,
		Reason: fmt.Sprintf("%s -> %s", in.State, to), Values: in.Values,
	}
	in.State, in.Since, in.LastEval, in.Reason = to, when, when, tr.Reason
	return in, store.Change{Key: tr.Key(), Instance: &in, Transition: &tr}
}
