package replay

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/alerts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/store"
)

// Report is what the engine decided over the window.
type Report struct {
	From    time.Time      `json:"from"`
	To      time.Time      `json:"to"`
	Step    time.Duration  `json:"step_ns"`
	Asserts []AssertReport `json:"asserts"`
	Total   Totals         `json:"total"`
	// Gaps are the stretches in which a source could not be read or
	// returned nothing to any query: the engine saw them as no data or
	// unavailable, never as ok.
	Gaps []Gap `json:"gaps"`
	// Notes are what the replay could not take into account (a store
	// without the heartbeats' pings …).
	Notes []string `json:"notes,omitempty"`
	// Evaluations is how many evaluation times the window had; RangeQueries
	// how many range queries answered them, for Queries distinct queries.
	Evaluations  int `json:"evaluations"`
	RangeQueries int `json:"range_queries"`
	Queries      int `json:"queries"`
	// RuleEvaluations is how many evaluations of Prometheus rule groups
	// ran (each group at its slots of its interval).
	RuleEvaluations int `json:"rule_evaluations,omitempty"`
}

// AssertReport is one assert's share.
type AssertReport struct {
	Name string `json:"name"`
	// NoData: no query of the assert returned a sample anywhere in the
	// window (for an assert on the alerts of the rule files: no series its
	// rules read, and no alert query). Nothing can be said of it: it is
	// uncertain by policy, not "would not have paged".
	NoData bool `json:"no_data"`
	// NotReplayed: an assert triggered by Alertmanager's alerts, which
	// have no history to replay (the asserts bound to the alerts of
	// Prometheus rule files are replayed: the rules are evaluated).
	NotReplayed bool `json:"not_replayed,omitempty"`
	// NoDataTime is how long its queries returned nothing, and Gaps are
	// those stretches, each with its reason (the source's failure, or no
	// data): in them the assert is not known to have held.
	NoDataTime time.Duration `json:"no_data_ns"`
	Gaps       []Gap         `json:"gaps,omitempty"`
	Totals
	Runs    []RunRecord `json:"runs"`
	Pages   []Page      `json:"pages"`
	Longest []Incident  `json:"longest_incidents"`
	// all is every incident, for the timeline.
	all []Incident
}

// Totals are the counts of one assert or of all of them.
type Totals struct {
	Pending   time.Duration `json:"pending_ns"`
	Violated  time.Duration `json:"violated_ns"` // violated, remediating or escalated
	Uncertain time.Duration `json:"uncertain_ns"`
	// Flaps counts the times an instance went bad again after it had
	// recovered within the window.
	Flaps       int            `json:"flaps"`
	Incidents   int            `json:"incidents"`
	Remediated  int            `json:"remediations"`
	Verified    int            `json:"verified"`
	Failed      int            `json:"failed"`
	Refusals    map[string]int `json:"refusals"`         // by reason: cooldown, max_runs, breaker …
	PagesSent   int            `json:"pages"`            // trigger messages, every channel
	ByChannel   map[string]int `json:"pages_by_channel"` // trigger messages per channel
	ByLevel     map[int]int    `json:"pages_by_level"`   // trigger messages per escalation level
	ToPageP50   time.Duration  `json:"to_page_p50_ns"`   // from an incident's start to its first page
	ToPageP99   time.Duration  `json:"to_page_p99_ns"`   //
	toPage      []time.Duration
	NoDataCount int `json:"no_data_asserts,omitempty"` // in the total: asserts with no data at all
}

// RunRecord is one remediation run that would have happened.
type RunRecord struct {
	Remediation string         `json:"remediation"`
	Labels      assertd.Labels `json:"labels"`
	Started     time.Time      `json:"started"`
	Status      string         `json:"status"`
	Outcome     string         `json:"outcome"`
}

// Page is one trigger message on one channel.
type Page struct {
	Channel string         `json:"channel"`
	Level   int            `json:"level"`
	At      time.Time      `json:"at"`
	Labels  assertd.Labels `json:"labels"`
	State   assertd.State  `json:"state"`
}

// Incident is a stretch in which one instance was not ok.
type Incident struct {
	Labels assertd.Labels `json:"labels"`
	From   time.Time      `json:"from"`
	To     time.Time      `json:"to"` // the window's end when it had not recovered
	Open   bool           `json:"open,omitempty"`
	Worst  assertd.State  `json:"worst"`
	Paged  bool           `json:"paged"`
}

// Duration is how long the incident lasted within the window.
func (i Incident) Duration() time.Duration { return i.To.Sub(i.From) }

// longest is how many incidents a report lists per assert.
const longest = 3

// refusalKinds classify a refusal's reason, in the order they are tried.
var refusalKinds = []struct{ kind, word string }{
	{"kill_switch", "kill switch"}, {"silenced", "silenced"}, {"uncertain", "uncertain"},
	{"breaker", "breaker"}, {"guard", "guard"}, {"max_runs", "max_runs"}, {"cooldown", "cooldown"},
	{"lock", "lock"}, {"concurrency", "runs are in progress"}, {"budget", "budget"}, {"approval", "approval"},
}

func refusalKind(reason string) string {
	for _, k := range refusalKinds {
		if strings.Contains(reason, k.word) {
			return k.kind
		}
	}
	return "other"
}

// build reads what the engine decided back from its store and what reached
// the channels from the recorder.
func build(ctx context.Context, set *config.Set, st store.Store, rec *recorder, hists map[string]*history, reads map[string]ruleRead, w window) (*Report, error) {
	trans, err := all(ctx, func(ctx context.Context, n int) ([]assertd.Transition, error) {
		return st.Transitions(ctx, store.TransitionFilter{Limit: n})
	})
	if err != nil {
		return nil, err
	}
	decs, err := all(ctx, func(ctx context.Context, n int) ([]assertd.Decision, error) {
		return st.Decisions(ctx, store.DecisionFilter{Limit: n})
	})
	if err != nil {
		return nil, err
	}
	runs, err := all(ctx, func(ctx context.Context, n int) ([]assertd.Run, error) {
		return st.Runs(ctx, store.RunFilter{Limit: n})
	})
	if err != nil {
		return nil, err
	}
	rep := &Report{From: w.From, To: w.To, Step: w.Step, Total: newTotals()}
	byName := map[string]*AssertReport{}
	get := func(name string) *AssertReport {
		if r := byName[name]; r != nil {
			return r
		}
		r := &AssertReport{Name: name, Totals: newTotals()}
		byName[name] = r
		return r
	}
	def := set.Config.Sources.Default
	if def == "" {
		def = config.EmbeddedName
	}
	for _, a := range set.Asserts {
		r := get(a.Name)
		r.NotReplayed = a.Trigger != nil && a.Trigger.Sender != alerts.SenderRules
		var h *history
		var qs []string
		why := "no data: its queries returned no sample"
		if rr, ok := reads[a.Name]; ok {
			h, qs = hists[rulesSource(set)], append(slices.Clone(rr.Probes), rr.Alerts...)
			why = "no data: the series its rules read returned no sample"
		} else if len(a.Queries) > 0 {
			src := a.Source
			if src == "" {
				src = def
			}
			h = hists[src]
			for _, q := range a.Queries {
				qs = append(qs, q.Text)
			}
		}
		if h == nil {
			continue // heartbeats and Alertmanager's alerts: their data is not a query's
		}
		r.Gaps = h.missing(qs, why)
		for _, g := range r.Gaps {
			r.NoDataTime += g.To.Sub(g.From) + w.Step
		}
		r.NoData = r.NoDataTime >= time.Duration(w.steps())*w.Step
	}
	// Time in each state and the incidents, instance by instance.
	type key struct{ assert, fp string }
	byInst := map[key][]assertd.Transition{}
	for _, t := range trans {
		k := key{t.Assert, t.Fingerprint}
		byInst[k] = append(byInst[k], t)
	}
	incidents := map[key][]*Incident{}
	for k, ts := range byInst {
		r := get(k.assert)
		sort.SliceStable(ts, func(i, j int) bool { return ts[i].At.Before(ts[j].At) })
		var cur *Incident
		recovered, uncertainCause := false, false
		for i, t := range ts {
			end := w.To
			if i+1 < len(ts) {
				end = ts[i+1].At
			}
			d := end.Sub(t.At)
			switch t.To {
			case assertd.Pending:
				r.Pending += d
			case assertd.Violated:
				r.Violated += d
			case assertd.Uncertain:
				r.Uncertain += d
			case assertd.Remediating, assertd.Escalated:
				// Paged because it was uncertain: still uncertain.
				if t.From == assertd.Uncertain || (t.From == assertd.Escalated && uncertainCause) {
					r.Uncertain += d
				} else {
					r.Violated += d
				}
			}
			uncertainCause = t.To == assertd.Uncertain || (t.To == assertd.Escalated && (t.From == assertd.Uncertain || (t.From == assertd.Escalated && uncertainCause)))
			bad := t.To != assertd.OK && t.To != assertd.Silenced
			switch {
			case bad && cur == nil:
				cur = &Incident{Labels: t.Labels, From: t.At, Worst: t.To}
				incidents[k] = append(incidents[k], cur)
				if recovered {
					r.Flaps++
				}
			case bad:
				if rank(t.To) > rank(cur.Worst) {
					cur.Worst = t.To
				}
			case cur != nil:
				cur.To = t.At
				cur = nil
				recovered = true
			}
		}
		if cur != nil {
			cur.To, cur.Open = w.To, true
		}
	}
	for _, d := range decs {
		if d.Action == assertd.ActHold || (d.Action == assertd.ActEscalate && strings.HasPrefix(d.Reason, "refused")) {
			get(d.Assert).Refusals[refusalKind(d.Reason)]++
		}
	}
	for _, ru := range runs {
		if ru.Shadow {
			continue
		}
		r := get(ru.Assert)
		r.Runs = append(r.Runs, RunRecord{Remediation: ru.Remediation, Labels: ru.Labels, Started: ru.Started, Status: string(ru.Status), Outcome: ru.Outcome})
		r.Remediated++
		switch ru.Status {
		case assertd.RunSucceeded:
			r.Verified++
		case assertd.RunFailed, assertd.RunInterrupted, assertd.RunRefused:
			r.Failed++
		}
	}
	rec.mu.Lock()
	msgs := slices.Clone(rec.sent)
	rec.mu.Unlock()
	for _, m := range msgs {
		if m.Kind != assertd.NoticeTrigger {
			continue
		}
		seen := map[string]bool{}
		for _, n := range m.Notices {
			r := get(n.Assert)
			if !seen[n.Assert] {
				seen[n.Assert] = true
				r.PagesSent++
				r.ByChannel[m.Channel]++
				r.ByLevel[m.Level]++
				r.Pages = append(r.Pages, Page{Channel: m.Channel, Level: m.Level, At: m.At, Labels: n.Labels, State: n.State})
			}
			for _, inc := range incidents[key{n.Assert, n.Fingerprint}] {
				if !m.At.Before(inc.From) && !m.At.After(inc.To) && !inc.Paged {
					inc.Paged = true
					r.toPage = append(r.toPage, m.At.Sub(inc.From))
				}
			}
		}
	}
	for k, incs := range incidents {
		r := get(k.assert)
		r.addIncidents(incs)
	}
	for _, h := range hists {
		rep.Gaps = append(rep.Gaps, h.gaps()...)
		h.mu.Lock()
		rep.RangeQueries += h.rangeQueries
		rep.Queries += len(h.queries)
		h.mu.Unlock()
	}
	sort.Slice(rep.Gaps, func(i, j int) bool {
		if !rep.Gaps[i].From.Equal(rep.Gaps[j].From) {
			return rep.Gaps[i].From.Before(rep.Gaps[j].From)
		}
		return rep.Gaps[i].Source < rep.Gaps[j].Source
	})
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		r := byName[name]
		sort.SliceStable(r.Pages, func(i, j int) bool {
			if !r.Pages[i].At.Equal(r.Pages[j].At) {
				return r.Pages[i].At.Before(r.Pages[j].At)
			}
			if r.Pages[i].Channel != r.Pages[j].Channel {
				return r.Pages[i].Channel < r.Pages[j].Channel
			}
			return r.Pages[i].Labels.String() < r.Pages[j].Labels.String()
		})
		sort.SliceStable(r.Runs, func(i, j int) bool { return r.Runs[i].Started.Before(r.Runs[j].Started) })
		r.ToPageP50, r.ToPageP99 = quantile(r.toPage, 0.5), quantile(r.toPage, 0.99)
		rep.Total.add(&r.Totals)
		if r.NoData {
			rep.Total.NoDataCount++
		}
		rep.Asserts = append(rep.Asserts, *r)
	}
	rep.Total.ToPageP50, rep.Total.ToPageP99 = quantile(rep.Total.toPage, 0.5), quantile(rep.Total.toPage, 0.99)
	return rep, nil
}

// addIncidents counts an instance's incidents and keeps the assert's longest.
func (r *AssertReport) addIncidents(incs []*Incident) {
	r.Totals.Incidents += len(incs)
	for _, in := range incs {
		r.Longest = append(r.Longest, *in)
		r.all = append(r.all, *in)
	}
	sort.SliceStable(r.Longest, func(i, j int) bool {
		if di, dj := r.Longest[i].Duration(), r.Longest[j].Duration(); di != dj {
			return di > dj
		}
		return r.Longest[i].From.Before(r.Longest[j].From)
	})
	if len(r.Longest) > longest {
		r.Longest = r.Longest[:longest]
	}
}

func newTotals() Totals {
	return Totals{Refusals: map[string]int{}, ByChannel: map[string]int{}, ByLevel: map[int]int{}}
}

func (t *Totals) add(o *Totals) {
	t.Pending += o.Pending
	t.Violated += o.Violated
	t.Uncertain += o.Uncertain
	t.Flaps += o.Flaps
	t.Incidents += o.Incidents
	t.Remediated += o.Remediated
	t.Verified += o.Verified
	t.Failed += o.Failed
	t.PagesSent += o.PagesSent
	for k, v := range o.Refusals {
		t.Refusals[k] += v
	}
	for k, v := range o.ByChannel {
		t.ByChannel[k] += v
	}
	for k, v := range o.ByLevel {
		t.ByLevel[k] += v
	}
	t.toPage = append(t.toPage, o.toPage...)
}

// rank orders the bad states by how bad an incident got.
func rank(s assertd.State) int {
	return map[assertd.State]int{assertd.Pending: 1, assertd.Uncertain: 2, assertd.Violated: 3, assertd.Remediating: 4, assertd.Escalated: 5}[s]
}

// quantile is the nearest-rank q-quantile of ds (0 when empty).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
