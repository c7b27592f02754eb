package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

func msg(key, channel string, created time.Time) assertd.Message {
	return assertd.Message{Key: key, Channel: channel, DedupKey: "api/fp1", Kind: "trigger", Payload: `{"summary":"` + key + `"}`, Created: created}
}

func ids(ms []assertd.Message) []int64 {
	var out []int64
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func testOutboxLifecycle(t *testing.T, open Open) {
	s, c := open(t, "outbox"), ctx(t)
	later := msg("m3", "webhook", at(0))
	later.NextAttempt = at(time.Minute)
	added := must1[[]int64](t)(s.Enqueue(c, msg("m1", "slack", at(0)), msg("m2", "pagerduty", at(time.Second)), later))
	if len(added) != 3 {
		t.Fatalf("added %v", added)
	}
	// The same key again is a no-op (dedup across retries of the writer).
	if again := must1[[]int64](t)(s.Enqueue(c, msg("m1", "slack", at(5*time.Second)))); len(again) != 0 {
		t.Errorf("re-enqueue added %v", again)
	}

	got := must1[[]assertd.Message](t)(s.Claim(c, "d1", at(2*time.Second), 30*time.Second, 10))
	eq(t, "claimed: the due ones, oldest due first", ids(got), added[:2])
	for _, m := range got {
		if m.Status != assertd.MsgSending || m.ClaimedBy != "d1" || m.Attempts != 1 {
			t.Errorf("claimed message %+v", m)
		}
		sameTime(t, "claim until", m.ClaimUntil, at(32*time.Second))
	}
	if more := must1[[]assertd.Message](t)(s.Claim(c, "d2", at(3*time.Second), 30*time.Second, 10)); len(more) != 0 {
		t.Errorf("claimed twice: %v", ids(more))
	}

	must(t, s.Ack(c, added[0], "d1", at(4*time.Second), "1712345678.000100"))
	must(t, s.Ack(c, added[0], "d1", at(5*time.Second), "1712345678.000100")) // idempotent
	m := must1[assertd.Message](t)(s.Message(c, added[0]))
	if m.Status != assertd.MsgDelivered || m.ProviderID != "1712345678.000100" {
		t.Errorf("acked %+v", m)
	}
	sameTime(t, "delivered", m.Delivered, at(4*time.Second))
	if id := must1[string](t)(s.ProviderID(c, "slack", "api/fp1")); id != "1712345678.000100" {
		t.Errorf("provider id %q", id)
	}
	if id := must1[string](t)(s.ProviderID(c, "pagerduty", "api/fp1")); id != "" {
		t.Errorf("provider id of an undelivered message: %q", id)
	}
	wantErr(t, s.Ack(c, 999999, "d1", at(0), ""), store.ErrNotFound)

	// At 1m m3 becomes due, and m2's claim (until 32s) has lapsed.
	if got := must1[[]assertd.Message](t)(s.Claim(c, "d1", at(time.Minute), 30*time.Second, 10)); len(got) != 2 ||
		got[0].Key != "m2" || got[0].Attempts != 2 || got[1].Key != "m3" || got[1].Attempts != 1 {
		t.Errorf("due later: %+v", got)
	}
	list := must1[[]assertd.Message](t)(s.Messages(c, store.MessageFilter{Status: assertd.MsgDelivered}))
	if len(list) != 1 || list[0].Key != "m1" {
		t.Errorf("delivered list %+v", list)
	}
	if list := must1[[]assertd.Message](t)(s.Messages(c, store.MessageFilter{Channel: "pagerduty"})); len(list) != 1 {
		t.Errorf("by channel %+v", list)
	}
	_, err := s.Enqueue(c, assertd.Message{Key: "x", Channel: "slack"})
	wantErr(t, err, store.ErrInvalid)
}

func testOutboxRetryBackoffDead(t *testing.T, open Open) {
	s, c := open(t, "retry"), ctx(t)
	m := msg("m1", "slack", at(0))
	m.MaxAttempts = 3
	id := must1[[]int64](t)(s.Enqueue(c, m))[0]
	now := at(0)
	for attempt := 1; attempt <= 3; attempt++ {
		got := must1[[]assertd.Message](t)(s.Claim(c, "d1", now, 30*time.Second, 1))
		if len(got) != 1 || got[0].Attempts != attempt {
			t.Fatalf("attempt %d: claimed %+v", attempt, got)
		}
		// Another deliverer cannot report on a claim it does not hold.
		wantErr(t, s.Nack(c, id, "d2", now, "boom", now, false), store.ErrConflict)
		backoff := time.Duration(1<<attempt) * time.Second
		must(t, s.Nack(c, id, "d1", now.Add(time.Second), fmt.Sprintf("HTTP 500 on attempt %d", attempt), now.Add(backoff), false))
		if attempt == 3 {
			break
		}
		// Not due before the backoff has passed.
		if early := must1[[]assertd.Message](t)(s.Claim(c, "d1", now.Add(backoff-time.Microsecond), 30*time.Second, 1)); len(early) != 0 {
			t.Fatalf("attempt %d: claimed before the backoff ended", attempt)
		}
		mm := must1[assertd.Message](t)(s.Message(c, id))
		if mm.Status != assertd.MsgPending || mm.LastError != fmt.Sprintf("HTTP 500 on attempt %d", attempt) || mm.ClaimedBy != "" {
			t.Errorf("after nack %d: %+v", attempt, mm)
		}
		sameTime(t, "next attempt", mm.NextAttempt, now.Add(backoff))
		now = now.Add(backoff)
	}
	dead := must1[assertd.Message](t)(s.Message(c, id))
	if dead.Status != assertd.MsgDead || dead.Attempts != 3 || dead.LastError != "HTTP 500 on attempt 3" {
		t.Fatalf("after the last attempt: %+v", dead)
	}
	if got := must1[[]assertd.Message](t)(s.Claim(c, "d1", at(time.Hour), 30*time.Second, 10)); len(got) != 0 {
		t.Errorf("a dead message was claimed")
	}
	letters := must1[[]assertd.Message](t)(s.Messages(c, store.MessageFilter{Status: assertd.MsgDead}))
	if len(letters) != 1 || letters[0].ID != id {
		t.Errorf("dead letters %+v", letters)
	}

	// A refusal (HTTP 400) is dead at once.
	id2 := must1[[]int64](t)(s.Enqueue(c, msg("m2", "webhook", at(0))))[0]
	must1[[]assertd.Message](t)(s.Claim(c, "d1", at(time.Hour), 30*time.Second, 1))
	must(t, s.Nack(c, id2, "d1", at(time.Hour), "HTTP 400: bad payload", time.Time{}, true))
	if st := must1[assertd.Message](t)(s.Message(c, id2)).Status; st != assertd.MsgDead {
		t.Errorf("refused message is %s", st)
	}

	// An operator requeues a dead letter: it is due again, with fresh attempts.
	wantErr(t, s.Requeue(c, id2+1000, "alice", at(2*time.Hour)), store.ErrNotFound)
	must(t, s.Requeue(c, id, "alice", at(2*time.Hour)))
	wantErr(t, s.Requeue(c, id, "alice", at(2*time.Hour)), store.ErrConflict)
	got := must1[[]assertd.Message](t)(s.Claim(c, "d1", at(2*time.Hour), 30*time.Second, 10))
	if len(got) != 1 || got[0].ID != id || got[0].Attempts != 1 {
		t.Errorf("after requeue: %+v", got)
	}
	if log := must1[[]assertd.AuditEntry](t)(s.AuditLog(c, store.AuditFilter{Action: "message.requeue"})); len(log) != 1 || log[0].Actor != "alice" {
		t.Errorf("requeue audit %+v", log)
	}
}

func testOutboxClaimExpiry(t *testing.T, open Open) {
	s, c := open(t, "claimexpiry"), ctx(t)
	m := msg("m1", "slack", at(0))
	m.MaxAttempts = 2
	id := must1[[]int64](t)(s.Enqueue(c, m))[0]
	must1[[]assertd.Message](t)(s.Claim(c, "crashed", at(0), 30*time.Second, 1))
	// The deliverer died holding the claim: once it lapses, another takes it.
	if got := must1[[]assertd.Message](t)(s.Claim(c, "d2", at(29*time.Second), 30*time.Second, 1)); len(got) != 0 {
		t.Fatal("taken before the claim lapsed")
	}
	got := must1[[]assertd.Message](t)(s.Claim(c, "d2", at(30*time.Second), 30*time.Second, 1))
	if len(got) != 1 || got[0].ClaimedBy != "d2" || got[0].Attempts != 2 {
		t.Fatalf("reclaim: %+v", got)
	}
	// The first deliverer wakes up: its nack is refused, its ack accepted
	// (the message was sent, whoever sent it).
	wantErr(t, s.Nack(c, id, "crashed", at(31*time.Second), "late", at(40*time.Second), false), store.ErrConflict)
	// d2 dies too, after the last attempt: the message is dead, not retried.
	if got := must1[[]assertd.Message](t)(s.Claim(c, "d3", at(time.Minute), 30*time.Second, 1)); len(got) != 0 {
		t.Fatalf("claimed past its attempts: %+v", got)
	}
	if m := must1[assertd.Message](t)(s.Message(c, id)); m.Status != assertd.MsgDead || m.LastError == "" {
		t.Errorf("after the last claim lapsed: %+v", m)
	}
	must(t, s.Ack(c, id, "crashed", at(2*time.Minute), "ts-1"))
	if m := must1[assertd.Message](t)(s.Message(c, id)); m.Status != assertd.MsgDelivered {
		t.Errorf("late ack: %+v", m)
	}
}

// Several deliverers (goroutines here, replicas in production) claim at the
// same time: every message is claimed exactly once.
func testOutboxConcurrentClaim(t *testing.T, open Open) {
	s, c := open(t, "claimrace"), ctx(t)
	const total, workers = 200, 6
	var msgs []assertd.Message
	for i := range total {
		msgs = append(msgs, msg(fmt.Sprintf("m%03d", i), "slack", at(time.Duration(i)*time.Millisecond)))
	}
	must1[[]int64](t)(s.Enqueue(c, msgs...))
	var mu sync.Mutex
	seen := map[int64]string{}
	var dup []string
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("deliverer-%d", w)
			for {
				got, err := s.Claim(c, owner, at(time.Minute), time.Hour, 7)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, m := range got {
					if prev, ok := seen[m.ID]; ok {
						dup = append(dup, fmt.Sprintf("%d by %s and %s", m.ID, prev, owner))
					}
					seen[m.ID] = owner
				}
				mu.Unlock()
				for _, m := range got {
					if err := s.Ack(c, m.ID, owner, at(time.Minute), ""); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(dup) > 0 {
		t.Fatalf("%d claims of a message already claimed, such as %v", len(dup), dup[:min(5, len(dup))])
	}
	if len(seen) != total {
		t.Fatalf("claimed %d of %d messages", len(seen), total)
	}
	owners := map[string]bool{}
	for _, o := range seen {
		owners[o] = true
	}
	t.Logf("%d messages claimed by %d deliverers", total, len(owners))
	delivered := must1[[]assertd.Message](t)(s.Messages(c, store.MessageFilter{Status: assertd.MsgDelivered}))
	if len(delivered) != total {
		t.Errorf("%d delivered, want %d", len(delivered), total)
	}
	got := ids(delivered)
	slices.Sort(got)
	if len(slices.Compact(got)) != total {
		t.Error("duplicate IDs in the outbox")
	}
}

// A deliverer that holds a claimed message back (rate limit, grouping, a
// channel cooling down) gives it back without spending an attempt.
func testOutboxRelease(t *testing.T, open Open) {
	s, c := open(t, "release"), ctx(t)
	m := msg("m1", "pagerduty", at(0))
	m.MaxAttempts = 2
	id := must1[[]int64](t)(s.Enqueue(c, m))[0]
	for i := range 5 {
		now := at(time.Duration(i) * time.Minute)
		got := must1[[]assertd.Message](t)(s.Claim(c, "d1", now, 30*time.Second, 1))
		if len(got) != 1 || got[0].Attempts != 1 {
			t.Fatalf("release %d: claimed %+v", i, got)
		}
		wantErr(t, s.Release(c, id, "d2", now.Add(time.Minute), "not mine"), store.ErrConflict)
		note := ""
		if i == 0 {
			note = "pagerduty failing: HTTP 500"
		}
		must(t, s.Release(c, id, "d1", now.Add(time.Minute), note))
		mm := must1[assertd.Message](t)(s.Message(c, id))
		if mm.Status != assertd.MsgPending || mm.Attempts != 0 || mm.ClaimedBy != "" || mm.LastError != "pagerduty failing: HTTP 500" {
			t.Fatalf("release %d: %+v", i, mm)
		}
		sameTime(t, "released until", mm.NextAttempt, now.Add(time.Minute))
		if early := must1[[]assertd.Message](t)(s.Claim(c, "d1", now.Add(time.Minute-time.Microsecond), 30*time.Second, 1)); len(early) != 0 {
			t.Fatal("claimed before the release time")
		}
	}
	wantErr(t, s.Release(c, id, "d1", at(time.Hour), ""), store.ErrConflict) // not claimed
	wantErr(t, s.Release(c, id+1000, "d1", at(time.Hour), ""), store.ErrNotFound)
	_ = must1[[]assertd.Message](t)(s.Claim(c, "d1", at(time.Hour), 30*time.Second, 1))
	must(t, s.Ack(c, id, "d1", at(time.Hour), "dedup"))
	if mm := must1[assertd.Message](t)(s.Message(c, id)); mm.Status != assertd.MsgDelivered || mm.LastError != "" {
		t.Errorf("after release and ack: %+v", mm)
	}
}
