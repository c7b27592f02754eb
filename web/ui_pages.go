package web

import (
	"context"
	"html/template"
	"net/http"
	"slices"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/store"
)

// This file: the handlers of the UI's pages (the forms are in ui_forms.go).

// overviewRow is one instance on the overview: where it stands, what
// assertd last decided about it, and who was paged.
type overviewRow struct {
	assertd.Instance
	Decision *assertd.Decision
	Paged    []channelStatus
}

// channelStatus is the delivery of an incident's latest message on one channel.
type channelStatus struct {
	Channel string
	Kind    string
	Status  assertd.MessageStatus
	Error   string
}

type overviewData struct {
	Filter    instanceFilter
	States    []assertd.State
	Counts    map[assertd.State]int
	Total     int
	Rows      []overviewRow
	Shown     int
	Asserts   []string
	Approvals []approvalView
	Runs      []assertd.Run
	Reload    reloadView
	Held      int
	Breakers  []assertd.Breaker // open ones
}

// paged summarises an incident's messages: the latest per channel.
func paged(msgs []assertd.Message) []channelStatus {
	var out []channelStatus
	seen := map[string]bool{}
	for _, m := range msgs { // newest first
		if seen[m.Channel] {
			continue
		}
		seen[m.Channel] = true
		out = append(out, channelStatus{Channel: m.Channel, Kind: m.Kind, Status: m.Status, Error: m.LastError})
	}
	slices.SortFunc(out, func(a, b channelStatus) int {
		if a.Channel < b.Channel {
			return -1
		}
		return 1
	})
	return out
}

// overviewDetail is how many non-ok rows get their decision and pages looked up.
const overviewDetail = 50

func (s *server) overviewPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, err := parseInstanceFilter(r.URL.Query())
	if err != nil {
		s.formFail(w, r, err)
		return
	}
	all := s.d.Engine.Instances()
	d := overviewData{Filter: f, States: States, Counts: counts(all), Total: len(all)}
	detailed := 0
	for _, in := range all {
		if !f.keep(in) {
			continue
		}
		row := overviewRow{Instance: in}
		if in.State != assertd.OK && detailed < overviewDetail {
			detailed++
			row.Decision, row.Paged = s.lastAction(ctx, in)
		}
		d.Rows = append(d.Rows, row)
	}
	d.Shown = len(d.Rows)
	if set := s.d.Engine.Config(); set != nil {
		for _, a := range set.Asserts {
			d.Asserts = append(d.Asserts, a.Name)
		}
		slices.Sort(d.Asserts)
	}
	d.Approvals, _ = s.approvals(r)
	d.Runs, _ = s.d.Store.Runs(ctx, store.RunFilter{Limit: 8})
	st := s.status(ctx)
	d.Reload, d.Held = st.Reload, st.Held
	d.Breakers = s.openBreakers(ctx)
	title := "Overview"
	if !f.Empty() {
		title = "Overview (filtered)"
	}
	s.render(w, r, http.StatusOK, "overview", page{Title: title, Nav: "overview", Data: d})
}

// lastAction returns the latest decision about an instance that did
// something, and the delivery of its messages.
func (s *server) lastAction(ctx context.Context, in assertd.Instance) (*assertd.Decision, []channelStatus) {
	var dec *assertd.Decision
	if ds, err := s.d.Store.Decisions(ctx, store.DecisionFilter{Assert: in.Assert, Fingerprint: in.Fingerprint, Limit: 10}); err == nil {
		for i := range ds {
			if ds[i].Action != assertd.ActNone || i == len(ds)-1 {
				dec = &ds[i]
				break
			}
		}
	}
	msgs, _ := s.d.Store.Messages(ctx, store.MessageFilter{DedupKey: in.Assert + "/" + in.Fingerprint, Limit: 20})
	return dec, paged(msgs)
}

// instanceRow is an instance with its expression resolved.
type instanceRow struct {
	assertd.Instance
	Expr     []exprPart
	Timeline template.HTML
}

type assertData struct {
	View      assertView
	Instances []instanceRow
	Remediate bool
	Breaker   *assertd.Breaker // nil: it never tripped
	Done      string
}

func (s *server) assertPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	set := s.d.Engine.Config()
	name := r.PathValue("name")
	var a *asserts.Compiled
	if set != nil {
		a = set.Assert(name)
	}
	if a == nil {
		s.errorPage(w, r, http.StatusNotFound, "no assert "+name)
		return
	}
	all := s.d.Engine.Instances()
	d := assertData{View: viewAssert(set, a, all), Breaker: s.breakerOf(ctx, name), Done: r.URL.Query().Get("done")}
	now := s.now()
	for _, in := range all {
		if in.Assert != name {
			continue
		}
		trs, _ := s.d.Store.Transitions(ctx, store.TransitionFilter{Assert: name, Fingerprint: in.Fingerprint, Since: now.Add(-timelineSpan), Limit: 500})
		d.Instances = append(d.Instances, instanceRow{Instance: in, Expr: resolveExpr(a.Assert.Expect, in.Values),
			Timeline: timeline(in, trs, now, 640, true)})
	}
	s.render(w, r, http.StatusOK, "assert", page{Title: name, Nav: "overview", Data: d})
}

type instanceData struct {
	instanceDetail
	Assert       *assertView
	Expr         []exprPart
	Timeline     template.HTML
	SilenceMatch string
	Remediation  string
}

func (s *server) instancePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	assert, fp := r.PathValue("assert"), r.PathValue("fingerprint")
	det, err := s.instanceDetail(ctx, assert, fp)
	if err != nil {
		s.formFail(w, r, err)
		return
	}
	d := instanceData{instanceDetail: det}
	if set := s.d.Engine.Config(); set != nil {
		if a := set.Assert(assert); a != nil {
			v := viewAssert(set, a, nil)
			d.Assert = &v
			d.Expr = resolveExpr(a.Assert.Expect, det.Instance.Values)
			d.Remediation = a.Remediate
		}
	}
	d.Timeline = timeline(det.Instance, det.Transitions, s.now(), 900, true)
	var ms []assertd.Matcher
	for _, k := range det.Instance.Labels.Names() {
		ms = append(ms, assertd.Matcher{Name: k, Op: assertd.MatchEqual, Value: det.Instance.Labels[k]})
	}
	if len(ms) > 0 {
		d.SilenceMatch = matchersString(ms)
	}
	s.render(w, r, http.StatusOK, "instance", page{Title: assert + " " + det.Instance.Labels.String(), Nav: "overview", Data: d})
}

func (s *server) runPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.runDetail(r.Context(), r.PathValue("id"))
	if err != nil {
		s.formFail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "run", page{Title: "Run " + d.Run.ID, Nav: "overview", Data: d})
}

func (s *server) heartbeatsPage(w http.ResponseWriter, r *http.Request) {
	hbs, err := s.heartbeats(r.Context(), 8)
	if err != nil {
		s.formFail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "heartbeats", page{Title: "Heartbeats", Nav: "heartbeats", Data: hbs})
}

type silencesData struct {
	Active  []silenceView
	Expired []silenceView
	Match   string // prefilled
}

func (s *server) silencesPage(w http.ResponseWriter, r *http.Request) {
	all, err := s.silences(r, true)
	if err != nil {
		s.formFail(w, r, err)
		return
	}
	d := silencesData{Match: r.URL.Query().Get("match")}
	now := s.now()
	for _, si := range all {
		if !si.End.IsZero() && !si.End.After(now) {
			d.Expired = append(d.Expired, si)
		} else {
			d.Active = append(d.Active, si)
		}
	}
	slices.Reverse(d.Expired)
	if len(d.Expired) > 20 {
		d.Expired = d.Expired[:20]
	}
	s.render(w, r, http.StatusOK, "silences", page{Title: "Silences", Nav: "silences", Data: d})
}

type settingsData struct {
	Settings []settingView
	Audit    []assertd.AuditEntry
}

func (s *server) settingsPage(w http.ResponseWriter, r *http.Request) {
	vs, err := s.settings(r.Context())
	if err != nil {
		s.formFail(w, r, err)
		return
	}
	audit, _ := s.d.Store.AuditLog(r.Context(), store.AuditFilter{Limit: 30})
	s.render(w, r, http.StatusOK, "settings", page{Title: "Settings", Nav: "settings", Data: settingsData{Settings: vs, Audit: audit}})
}

type breakGlassData struct {
	Instance     assertd.Instance
	Remediations []string
	Default      string
}

func (s *server) breakGlassPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	in, err := s.findInstance(r.Context(), q.Get("assert"), q.Get("fingerprint"))
	if err != nil {
		s.formFail(w, r, err)
		return
	}
	d := breakGlassData{Instance: in}
	if set := s.d.Engine.Config(); set != nil {
		for _, rm := range set.Remediations {
			d.Remediations = append(d.Remediations, rm.Name)
		}
		if a := set.Assert(in.Assert); a != nil {
			d.Default = a.Remediate
		}
	}
	s.render(w, r, http.StatusOK, "breakglass", page{Title: "Break glass", Nav: "overview", Data: d})
}
