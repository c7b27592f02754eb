package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/store"
)

// This file: the read routes of the JSON API.

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.d.Ready != nil {
		if err := s.d.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// limitParam reads ?limit= (default def, at most most).
func limitParam(q url.Values, def, most int) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > most {
		return 0, fieldErr("limit", "%q is not a number from 1 to %d", v, most)
	}
	return n, nil
}

func (s *server) apiStatus(w http.ResponseWriter, r *http.Request) {
	st := s.status(r.Context())
	// held_changes, last_reload and reload_error as before, for scripts.
	out := map[string]any{"held_changes": st.Held, "last_reload": st.Reload.At, "counts": st.Counts, "problems": st.Problems,
		"instances": st.Instances, "kill_switch": st.KillSwitch, "reload": st.Reload, "asserts": st.Asserts}
	if st.Reload.Error != "" {
		out["reload_error"] = st.Reload.Error
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) apiAsserts(w http.ResponseWriter, r *http.Request) {
	set := s.d.Engine.Config()
	ins := s.d.Engine.Instances()
	out := []assertView{}
	if set != nil {
		for _, a := range set.Asserts {
			out = append(out, viewAssert(set, a, ins))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"asserts": out})
}

func (s *server) apiAssert(w http.ResponseWriter, r *http.Request) {
	set := s.d.Engine.Config()
	name := r.PathValue("name")
	var a *asserts.Compiled
	if set != nil {
		a = set.Assert(name)
	}
	if a == nil {
		writeError(w, http.StatusNotFound, "name", "no assert "+strconv.Quote(name))
		return
	}
	ins := s.d.Engine.Instances()
	var mine []assertd.Instance
	for _, in := range ins {
		if in.Assert == name {
			mine = append(mine, in)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"assert": viewAssert(set, a, ins), "instances": nonNil(mine), "breaker": s.breakerOf(r.Context(), name)})
}

func (s *server) apiBreakers(w http.ResponseWriter, r *http.Request) {
	bs, err := s.d.Engine.Breakers(r.Context(), s.now())
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"breakers": nonNil(bs)})
}

func (s *server) apiLifecycles(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"lifecycles": s.d.Engine.Lifecycles()})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *server) apiInstances(w http.ResponseWriter, r *http.Request) {
	f, err := parseInstanceFilter(r.URL.Query())
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	all := s.d.Engine.Instances()
	out := []assertd.Instance{}
	for _, in := range all {
		if f.keep(in) {
			out = append(out, in)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"instances": out, "counts": counts(all), "problems": problems(all)})
}

func (s *server) apiInstance(w http.ResponseWriter, r *http.Request) {
	d, err := s.instanceDetail(r.Context(), r.PathValue("assert"), r.PathValue("fingerprint"))
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *server) apiRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, err := limitParam(q, 100, 1000)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	f := store.RunFilter{Remediation: q.Get("remediation"), Assert: q.Get("assert"), Fingerprint: q.Get("fingerprint"),
		Status: assertd.RunStatus(q.Get("status")), Limit: n}
	runs, err := s.d.Store.Runs(r.Context(), f)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": nonNil(runs)})
}

func (s *server) apiRun(w http.ResponseWriter, r *http.Request) {
	d, err := s.runDetail(r.Context(), r.PathValue("id"))
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *server) apiMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, err := limitParam(q, 100, 1000)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	f := store.MessageFilter{Status: assertd.MessageStatus(q.Get("status")), Channel: q.Get("channel"), DedupKey: q.Get("dedup_key"), Limit: n}
	msgs, err := s.d.Store.Messages(r.Context(), f)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": nonNil(msgs)})
}

func (s *server) apiHeartbeats(w http.ResponseWriter, r *http.Request) {
	n, err := limitParam(r.URL.Query(), 10, store.PingsKept)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	hbs, err := s.heartbeats(r.Context(), n)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"heartbeats": nonNil(hbs)})
}

// silenceView is a silence and whether it is in force now.
type silenceView struct {
	assertd.Silence
	Active bool   `json:"active"`
	Match  string `json:"match"` // the matchers as written
}

func (s *server) silences(r *http.Request, expired bool) ([]silenceView, error) {
	now := s.now()
	ss, err := s.d.Store.Silences(r.Context(), now, expired)
	if err != nil {
		return nil, err
	}
	out := []silenceView{}
	for _, si := range ss {
		out = append(out, silenceView{Silence: si, Active: si.ActiveAt(now), Match: matchersString(si.Matchers)})
	}
	return out, nil
}

func (s *server) apiSilences(w http.ResponseWriter, r *http.Request) {
	expired := r.URL.Query().Get("expired")
	if expired != "" && expired != "true" && expired != "false" {
		writeError(w, http.StatusBadRequest, "expired", "expired is true or false")
		return
	}
	out, err := s.silences(r, expired == "true")
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"silences": out})
}

func (s *server) apiSettings(w http.ResponseWriter, r *http.Request) {
	vs, err := s.settings(r.Context())
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"settings": vs})
}

// approvalView is a pending approval with its run.
type approvalView struct {
	assertd.Approval
	Run     *assertd.Run `json:"run,omitempty"`
	Expired bool         `json:"expired"`
}

func (s *server) approvals(r *http.Request) ([]approvalView, error) {
	as, err := s.d.Store.PendingApprovals(r.Context())
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := []approvalView{}
	for _, a := range as {
		v := approvalView{Approval: a, Expired: !now.Before(a.Expires)}
		if run, err := s.d.Store.Run(r.Context(), a.RunID); err == nil {
			v.Run = &run
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *server) apiApprovals(w http.ResponseWriter, r *http.Request) {
	out, err := s.approvals(r)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": out})
}

func (s *server) apiAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, err := limitParam(q, 100, 1000)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	es, err := s.d.Store.AuditLog(r.Context(), store.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), Limit: n})
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"audit": nonNil(es)})
}
