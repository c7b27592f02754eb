package alerts

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/assertd/assertd"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func alert(name, inst string, state State, starts time.Time) Alert {
	return Alert{Labels: assertd.Labels{"alertname": name, "instance": inst}, State: state, StartsAt: starts,
		Annotations: assertd.Labels{"summary": name + " on " + inst}, GeneratorURL: "http://prom/graph"}
}

func states(t *testing.T, f *Feed, sender string, now time.Time) string {
	t.Helper()
	as, err := f.Select(sender, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, a := range as {
		parts = append(parts, a.Labels["instance"]+"="+string(a.State)+"@"+a.StartsAt.Format("15:04"))
	}
	return strings.Join(parts, " ")
}

// The fingerprint is Prometheus' (Alertmanager's API shows it).
func TestFingerprintIsPrometheus(t *testing.T) {
	ls := assertd.Labels{"alertname": "Up", "instance": "db1"}
	want := model.LabelSet{"alertname": "Up", "instance": "db1"}.Fingerprint().String()
	if got := Fingerprint(ls); got != want || len(got) != 16 {
		t.Fatalf("fingerprint %q, Prometheus says %q", got, want)
	}
}

func TestUpdateIsIdempotentByFingerprintAndStart(t *testing.T) {
	f := New(0)
	a := alert("PgDown", "db1", Firing, t0)
	if r := f.Update(SenderAlertmanager, []Alert{a}, t0); r != (Result{New: 1}) {
		t.Fatalf("first: %+v", r)
	}
	for i := range 3 { // Alertmanager's repeats
		if r := f.Update(SenderAlertmanager, []Alert{a}, t0.Add(time.Duration(i+1)*time.Minute)); r != (Result{Repeated: 1}) {
			t.Fatalf("repeat %d: %+v", i, r)
		}
	}
	as, _ := f.Select(SenderAlertmanager, nil, t0.Add(5*time.Minute))
	if len(as) != 1 || !as[0].LastSeen.Equal(t0.Add(3*time.Minute)) || as[0].Fingerprint != Fingerprint(a.Labels) {
		t.Fatalf("after repeats: %+v", as)
	}
	// The resolve of this episode resolves it; a late firing repeat of
	// the same episode does not bring it back.
	res := a
	res.State, res.EndsAt = Resolved, t0.Add(4*time.Minute)
	if r := f.Update(SenderAlertmanager, []Alert{res}, t0.Add(4*time.Minute)); r != (Result{Resolved: 1}) {
		t.Fatalf("resolve: %+v", r)
	}
	if r := f.Update(SenderAlertmanager, []Alert{a}, t0.Add(5*time.Minute)); r != (Result{Ignored: 1}) {
		t.Fatalf("late repeat: %+v", r)
	}
	if got := states(t, f, SenderAlertmanager, t0.Add(5*time.Minute)); got != "db1=resolved@10:00" {
		t.Fatal(got)
	}
	// A new episode (a later startsAt) fires again; a resolve of the old
	// episode, arriving late, does not resolve the new one.
	b := alert("PgDown", "db1", Firing, t0.Add(10*time.Minute))
	if r := f.Update(SenderAlertmanager, []Alert{b}, t0.Add(10*time.Minute)); r != (Result{New: 1}) {
		t.Fatalf("new episode: %+v", r)
	}
	if r := f.Update(SenderAlertmanager, []Alert{res}, t0.Add(11*time.Minute)); r != (Result{Ignored: 1}) {
		t.Fatalf("old resolve: %+v", r)
	}
	if got := states(t, f, SenderAlertmanager, t0.Add(11*time.Minute)); got != "db1=firing@10:10" {
		t.Fatal(got)
	}
}

func TestReplaceResolvesWhatIsGoneAndPrunes(t *testing.T) {
	f := New(10 * time.Minute)
	f.Replace(SenderRules, []Alert{alert("A", "x", Firing, t0), alert("A", "y", Pending, t0)}, t0)
	if got := states(t, f, SenderRules, t0); got != "x=firing@10:00 y=pending@10:00" && got != "y=pending@10:00 x=firing@10:00" {
		t.Fatal(got)
	}
	f.Replace(SenderRules, []Alert{alert("A", "y", Firing, t0)}, t0.Add(time.Minute))
	got := states(t, f, SenderRules, t0.Add(time.Minute))
	if !strings.Contains(got, "x=resolved") || !strings.Contains(got, "y=firing") {
		t.Fatal(got)
	}
	f.Replace(SenderRules, []Alert{alert("A", "y", Firing, t0)}, t0.Add(12*time.Minute))
	if got := states(t, f, SenderRules, t0.Add(12*time.Minute)); got != "y=firing@10:00" {
		t.Fatalf("the resolved alert is kept 10m, then dropped: %s", got)
	}
	// Other senders are apart: one not heard from yet is not known.
	if _, err := f.Select(SenderAlertmanager, nil, t0); !errors.Is(err, ErrNotHeard) || !errors.Is(err, assertd.ErrSourceUnavailable) {
		t.Fatalf("a sender not heard from: %v", err)
	}
}

func TestFailAndSilenceAreUncertain(t *testing.T) {
	f := New(0)
	f.Expect(SenderRules, time.Minute)
	f.Replace(SenderRules, []Alert{alert("A", "x", Firing, t0)}, t0)
	if _, err := f.Select(SenderRules, nil, t0.Add(time.Minute)); err != nil {
		t.Fatalf("within the allowance: %v", err)
	}
	_, err := f.Select(SenderRules, nil, t0.Add(61*time.Second))
	if !errors.Is(err, assertd.ErrSourceUnavailable) || !strings.Contains(err.Error(), "no word from rules since") {
		t.Fatalf("silent past the allowance: %v", err)
	}
	f.Replace(SenderRules, nil, t0.Add(2*time.Minute))
	f.Fail(SenderRules, errors.New("query timed out"), t0.Add(3*time.Minute))
	_, err = f.Select(SenderRules, nil, t0.Add(3*time.Minute))
	if !errors.Is(err, assertd.ErrSourceUnavailable) || !strings.Contains(err.Error(), "query timed out") {
		t.Fatalf("failed: %v", err)
	}
	f.Replace(SenderRules, nil, t0.Add(4*time.Minute))
	if _, err := f.Select(SenderRules, nil, t0.Add(4*time.Minute)); err != nil {
		t.Fatalf("spoke again: %v", err)
	}
}

func TestSelectMatchesAndCopies(t *testing.T) {
	f := New(0)
	f.Update(SenderAlertmanager, []Alert{alert("A", "x", Firing, t0), alert("B", "x", Firing, t0)}, t0)
	m := assertd.NewMatcherSet([]assertd.Matcher{{Name: "alertname", Op: assertd.MatchEqual, Value: "B"}})
	as, err := f.Select(SenderAlertmanager, m, t0)
	if err != nil || len(as) != 1 || as[0].Labels["alertname"] != "B" {
		t.Fatalf("%v %+v", err, as)
	}
	as[0].Labels["alertname"] = "changed"
	if as, _ := f.Select(SenderAlertmanager, m, t0); len(as) != 1 {
		t.Fatal("Select handed out the feed's own labels")
	}
}

func TestChangedIsClosedOnChange(t *testing.T) {
	f := New(0)
	ch := f.Changed()
	select {
	case <-ch:
		t.Fatal("closed before any change")
	default:
	}
	f.Update(SenderAlertmanager, nil, t0)
	select {
	case <-ch:
	default:
		t.Fatal("not closed by an update")
	}
}
