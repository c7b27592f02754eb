package web

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/alerts"
)

// The Alertmanager-compatible API (/api/v2/…) over assertd's own instances
// and silences, so that amtool, karma and Grafana's Alertmanager data source
// read assertd: its violated, remediating and escalated instances are the
// alerts (alertname is the assert), and its silences are the silences. The
// JSON has the shape of Alertmanager's OpenAPI models.

type amMatcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual *bool  `json:"isEqual,omitempty"`
}

type amStatus struct {
	State       string   `json:"state"`
	SilencedBy  []string `json:"silencedBy"`
	InhibitedBy []string `json:"inhibitedBy"`
	MutedBy     []string `json:"mutedBy"`
}

type amReceiver struct {
	Name string `json:"name"`
}

type amGettableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	UpdatedAt    time.Time         `json:"updatedAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
	Fingerprint  string            `json:"fingerprint"`
	Receivers    []amReceiver      `json:"receivers"`
	Status       amStatus          `json:"status"`
}

type amAlertGroup struct {
	Labels      map[string]string `json:"labels"`
	Receiver    amReceiver        `json:"receiver"`
	Alerts      []amGettableAlert `json:"alerts"`
	RouteLabels map[string]string `json:"routeLabels"`
}

type amSilenceStatus struct {
	State string `json:"state"`
}

type amGettableSilence struct {
	ID        string          `json:"id"`
	Status    amSilenceStatus `json:"status"`
	UpdatedAt time.Time       `json:"updatedAt"`
	Comment   string          `json:"comment"`
	CreatedBy string          `json:"createdBy"`
	StartsAt  time.Time       `json:"startsAt"`
	EndsAt    time.Time       `json:"endsAt"`
	Matchers  []amMatcher     `json:"matchers"`
}

type amPostableSilence struct {
	ID        string      `json:"id"`
	Comment   string      `json:"comment"`
	CreatedBy string      `json:"createdBy"`
	StartsAt  time.Time   `json:"startsAt"`
	EndsAt    time.Time   `json:"endsAt"`
	Matchers  []amMatcher `json:"matchers"`
	// Annotations are accepted and not kept.
	Annotations map[string]string `json:"annotations"`
}

// amAlerting are the states shown as alerts.
var amAlerting = []assertd.State{assertd.Violated, assertd.Remediating, assertd.Escalated}

// amStarted is when the API began to answer (Alertmanager's uptime).
var amStarted = time.Now()

func (s *server) amRoutes() []route {
	api := func(method, path string, ro role, h http.HandlerFunc) route {
		return route{method: method, path: path, role: ro, api: true, h: h}
	}
	return []route{
		api("GET", "/api/v2/status", roleRead, s.amStatus),
		api("GET", "/api/v2/alerts", roleRead, s.amAlerts),
		api("GET", "/api/v2/alerts/groups", roleRead, s.amAlertGroups),
		api("GET", "/api/v2/silences", roleRead, s.amSilences),
		api("GET", "/api/v2/silence/{id}", roleRead, s.amSilence),
		api("POST", "/api/v2/silences", roleAdmin, s.amPostSilence),
		api("DELETE", "/api/v2/silence/{id}", roleAdmin, s.amDeleteSilence),
	}
}

func (s *server) amStatus(w http.ResponseWriter, r *http.Request) {
	b := assertd.Build()
	version := strings.TrimPrefix(b.Version, "v")
	writeJSONCompact(w, http.StatusOK, map[string]any{
		"cluster": map[string]any{"name": "", "peers": []any{}, "status": "disabled"},
		"config":  map[string]any{"original": ""},
		"uptime":  amStarted.UTC(),
		"versionInfo": map[string]string{"branch": "", "buildDate": "", "buildUser": "assertd", "goVersion": b.GoVersion,
			"revision": b.Revision, "version": version},
	})
}

// amAlertList returns the alerting instances as Alertmanager alerts, those
// that match the filter matchers, silenced ones only when silenced is set.
func (s *server) amAlertList(r *http.Request) ([]amGettableAlert, []string, error) {
	q := r.URL.Query()
	var filter []assertd.Matcher
	for _, f := range q["filter"] {
		ms, err := amFilter(f)
		if err != nil {
			return nil, nil, err
		}
		filter = append(filter, ms...)
	}
	fs := assertd.NewMatcherSet(filter)
	silenced := q.Get("silenced") != "false"
	active := q.Get("active") != "false"
	now := s.now()
	var out []amGettableAlert
	var policies []string
	set := s.d.Engine.Config()
	for _, in := range s.d.Engine.Instances() {
		st := in.State
		if st == assertd.Silenced {
			st = in.Underlying
		}
		if !slices.Contains(amAlerting, st) {
			continue
		}
		ls := in.Labels.Copy()
		ls["alertname"] = in.Assert
		if !fs.Matches(ls) {
			continue
		}
		a := amGettableAlert{Labels: ls, Annotations: map[string]string{"summary": in.Reason, "state": string(st)}, StartsAt: in.Since.UTC(),
			EndsAt: now.Add(5 * time.Minute).UTC(), UpdatedAt: in.LastEval.UTC(), Fingerprint: alerts.Fingerprint(ls),
			GeneratorURL: in.GeneratorURL, Status: amStatus{State: "active", SilencedBy: []string{}, InhibitedBy: []string{}, MutedBy: []string{}}}
		for k, v := range in.AlertAnnotations {
			a.Annotations[k] = v
		}
		if !in.ViolatedSince.IsZero() {
			a.StartsAt = in.ViolatedSince.UTC()
		}
		if in.Silenced != "" {
			a.Status.State, a.Status.SilencedBy = "suppressed", []string{in.Silenced}
			if !silenced {
				continue
			}
		} else if !active {
			continue
		}
		policy := "assertd"
		if c := set.Assert(in.Assert); c != nil {
			policy = cmp.Or(c.Escalate, set.Config.Defaults.Escalate, policy)
		}
		a.Receivers = []amReceiver{{Name: policy}}
		out = append(out, a)
		policies = append(policies, policy)
	}
	if out == nil {
		out = []amGettableAlert{}
	}
	return out, policies, nil
}

func (s *server) amAlerts(w http.ResponseWriter, r *http.Request) {
	out, _, err := s.amAlertList(r)
	if err != nil {
		amFail(w, err)
		return
	}
	writeJSONCompact(w, http.StatusOK, out)
}

func (s *server) amAlertGroups(w http.ResponseWriter, r *http.Request) {
	as, policies, err := s.amAlertList(r)
	if err != nil {
		amFail(w, err)
		return
	}
	groups := []amAlertGroup{}
	index := map[string]int{}
	for i, a := range as {
		key := a.Labels["alertname"] + "\x00" + policies[i]
		n, ok := index[key]
		if !ok {
			n = len(groups)
			index[key] = n
			groups = append(groups, amAlertGroup{Labels: map[string]string{"alertname": a.Labels["alertname"]}, Receiver: amReceiver{Name: policies[i]},
				RouteLabels: map[string]string{}})
		}
		groups[n].Alerts = append(groups[n].Alerts, a)
	}
	writeJSONCompact(w, http.StatusOK, groups)
}

func amSilenceOf(si assertd.Silence, now time.Time) amGettableSilence {
	state := "expired"
	switch {
	case si.ActiveAt(now):
		state = "active"
	case now.Before(si.Start):
		state = "pending"
	case si.Cron != "" && (si.End.IsZero() || now.Before(si.End)):
		state = "pending" // between the windows of a maintenance schedule
	}
	end := si.End
	if end.IsZero() {
		end = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	}
	out := amGettableSilence{ID: si.ID, Status: amSilenceStatus{State: state}, UpdatedAt: si.Created.UTC(), Comment: si.Comment,
		CreatedBy: si.Author, StartsAt: si.Start.UTC(), EndsAt: end.UTC(), Matchers: []amMatcher{}}
	for _, m := range si.Matchers {
		eq := m.Op == assertd.MatchEqual || m.Op == assertd.MatchRegexp
		out.Matchers = append(out.Matchers, amMatcher{Name: m.Name, Value: m.Value, IsRegex: m.Op == assertd.MatchRegexp || m.Op == assertd.MatchNotRegex, IsEqual: &eq})
	}
	return out
}

func (s *server) amSilences(w http.ResponseWriter, r *http.Request) {
	var filter []assertd.Matcher
	for _, f := range r.URL.Query()["filter"] {
		ms, err := amFilter(f)
		if err != nil {
			amFail(w, err)
			return
		}
		filter = append(filter, ms...)
	}
	ss, err := s.d.Store.Silences(r.Context(), s.now(), true)
	if err != nil {
		amFail(w, err)
		return
	}
	now := s.now()
	out := []amGettableSilence{}
	for _, si := range ss {
		// As Alertmanager does: a silence is listed when every filter
		// matcher is one of its matchers.
		if !slices.ContainsFunc(filter, func(f assertd.Matcher) bool { return !slices.Contains(si.Matchers, f) }) {
			out = append(out, amSilenceOf(si, now))
		}
	}
	writeJSONCompact(w, http.StatusOK, out)
}

func (s *server) amSilence(w http.ResponseWriter, r *http.Request) {
	si, err := s.d.Store.Silence(r.Context(), r.PathValue("id"))
	if err != nil {
		amFail(w, err)
		return
	}
	writeJSONCompact(w, http.StatusOK, amSilenceOf(si, s.now()))
}

// amPostSilence creates a silence, or replaces the one it names (as
// Alertmanager does: the old one expires, a new one is made).
func (s *server) amPostSilence(w http.ResponseWriter, r *http.Request) {
	var in amPostableSilence
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		amFail(w, bodyOrField(err))
		return
	}
	var ms []assertd.Matcher
	for _, m := range in.Matchers {
		eq := m.IsEqual == nil || *m.IsEqual
		op := map[[2]bool]assertd.MatchOp{{true, false}: assertd.MatchEqual, {false, false}: assertd.MatchNotEqual,
			{true, true}: assertd.MatchRegexp, {false, true}: assertd.MatchNotRegex}[[2]bool{eq, m.IsRegex}]
		ms = append(ms, assertd.Matcher{Name: m.Name, Op: op, Value: m.Value})
	}
	raw, _ := json.Marshal(ms)
	comment := strings.TrimSpace(in.Comment)
	p := principalOf(r.Context())
	if in.CreatedBy != "" && in.CreatedBy != p.Name && comment != "" {
		comment += " (" + in.CreatedBy + ")"
	}
	if in.ID != "" {
		if err := s.expireSilence(r.Context(), p, in.ID); err != nil {
			amFail(w, err)
			return
		}
	}
	si, err := s.createSilence(r.Context(), p, silenceInput{Matchers: raw, Starts: in.StartsAt, Ends: in.EndsAt, Comment: comment})
	if err != nil {
		amFail(w, err)
		return
	}
	writeJSONCompact(w, http.StatusOK, map[string]string{"silenceID": si.ID})
}

func (s *server) amDeleteSilence(w http.ResponseWriter, r *http.Request) {
	if err := s.expireSilence(r.Context(), principalOf(r.Context()), r.PathValue("id")); err != nil {
		amFail(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func bodyOrField(err error) error {
	if bodyErrorStatus(err) == http.StatusRequestEntityTooLarge {
		return err
	}
	return fieldErr("body", "not an Alertmanager silence: %v", err)
}

func writeJSONCompact(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// amFail answers an error as Alertmanager does: a JSON string.
func amFail(w http.ResponseWriter, err error) {
	status, _, msg := errStatus(err)
	writeJSONCompact(w, status, msg)
}

// amFilter reads one filter matcher as Alertmanager takes it: the value
// quoted or not (alertname=Foo, instance=~"db.*").
func amFilter(f string) ([]assertd.Matcher, error) {
	if ms, err := ParseMatchers(f); err == nil {
		return ms, nil
	}
	s := strings.Trim(strings.TrimSpace(f), "{}")
	for _, op := range []assertd.MatchOp{assertd.MatchRegexp, assertd.MatchNotRegex, assertd.MatchNotEqual, assertd.MatchEqual} {
		if name, value, ok := strings.Cut(s, string(op)); ok && name != "" {
			m := assertd.Matcher{Name: strings.TrimSpace(name), Op: op, Value: strings.TrimSpace(value)}
			if err := m.Validate(); err != nil {
				return nil, fieldErr("filter", "%v", err)
			}
			return []assertd.Matcher{m}, nil
		}
	}
	return nil, fieldErr("filter", "%q is not a matcher such as alertname=\"X\"", f)
}
