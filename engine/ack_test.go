package engine

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

func TestAcknowledge(t *testing.T) {
	set, _ := loadSet(t, latencyRules)
	st, src := openStore(t), &source{}
	e := newEngine(t, set, st, src)
	ctx := context.Background()
	src.set(map[string]float64{"a": 80, "b": 10}, nil)
	for _, dt := range []time.Duration{0, 10, 20, 30} {
		e.EvaluateNow(ctx, "latency", t0.Add(dt*time.Second))
	}
	a := assertd.Labels{"instance": "a"}.Fingerprint()
	b := assertd.Labels{"instance": "b"}.Fingerprint()
	if err := e.Acknowledge(ctx, "latency", b, "alice", "", t0.Add(time.Minute)); !errors.Is(err, ErrNotEscalated) {
		t.Fatalf("ack of an ok instance: %v", err)
	}
	if err := e.Acknowledge(ctx, "latency", "nope", "alice", "", t0.Add(time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ack of an unknown instance: %v", err)
	}
	if err := e.Acknowledge(ctx, "latency", a, "", "", t0.Add(time.Minute)); err == nil {
		t.Fatal("ack by nobody accepted")
	}
	for range 2 { // twice: the second is a no-op
		if err := e.Acknowledge(ctx, "latency", a, "alice", "looking at it", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	ds, _ := st.Decisions(ctx, store.DecisionFilter{Assert: "latency", Fingerprint: a, Action: assertd.ActAck})
	if len(ds) != 1 || ds[0].Reason != "acknowledged by alice: looking at it; no further level or repeat is paged, the resolve still goes out" ||
		ds[0].Policy != "ops" || !ds[0].At.Equal(t0.Add(time.Minute)) {
		t.Fatalf("ack decisions %+v", ds)
	}
	// Every channel the incident paged is told, once.
	acks, _ := st.Messages(ctx, store.MessageFilter{DedupKey: "latency/" + a})
	var told []string
	for _, m := range acks {
		if m.Kind != string(assertd.NoticeAck) {
			continue
		}
		var n assertd.Notice
		if err := json.Unmarshal([]byte(m.Payload), &n); err != nil || n.By != "alice" || n.Kind != assertd.NoticeAck || n.Fingerprint != a {
			t.Errorf("ack message %+v: %v", n, err)
		}
		told = append(told, m.Channel)
	}
	var paged []string
	for _, m := range acks {
		if m.Kind == string(assertd.NoticeTrigger) {
			paged = append(paged, m.Channel)
		}
	}
	slices.Sort(told)
	slices.Sort(paged)
	if len(told) == 0 || !slices.Equal(told, slices.Compact(paged)) {
		t.Errorf("ack messages to %v, the incident paged %v", told, paged)
	}
	log, _ := st.AuditLog(ctx, store.AuditFilter{Action: "incident.ack"})
	if len(log) != 1 || log[0].Actor != "alice" || log[0].Target != "latency/"+a {
		t.Fatalf("audit %+v", log)
	}
}
