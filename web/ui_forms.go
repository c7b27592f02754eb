package web

import (
	"encoding/json"
	"net/http"
	"strings"
)

// This file: the UI's forms. Each answers with a redirect (303) to the page
// that shows the result, or an error page with the status.

func (s *server) parseForm(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, bodyErrorStatus(err), "form: "+err.Error())
		return false
	}
	return true
}

func (s *server) formCreateSilence(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	match, _ := json.Marshal(r.PostForm.Get("matchers"))
	in := silenceInput{Matchers: match, Duration: r.PostForm.Get("duration"), Cron: r.PostForm.Get("cron"), Comment: r.PostForm.Get("comment")}
	if _, err := s.createSilence(r.Context(), principalOf(r.Context()), in); err != nil {
		s.formFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/silences?done=silence", http.StatusSeeOther)
}

func (s *server) formExpireSilence(w http.ResponseWriter, r *http.Request) {
	if err := s.expireSilence(r.Context(), principalOf(r.Context()), r.PathValue("id")); err != nil {
		s.formFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/silences?done=expired", http.StatusSeeOther)
}

// formSettings changes one setting: op=put with value, or op=reset.
func (s *server) formSettings(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	p := principalOf(r.Context())
	key, reason := r.PostForm.Get("key"), r.PostForm.Get("reason")
	var err error
	if r.PostForm.Get("op") == "reset" {
		err = s.deleteSetting(r.Context(), p, key, reason)
	} else {
		_, err = s.putSetting(r.Context(), p, key, settingInput{Value: r.PostForm.Get("value"), Reason: reason})
	}
	if err != nil {
		s.formFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/settings?done=setting", http.StatusSeeOther)
}

func (s *server) formApprove(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	yes := r.PostForm.Get("decision") == "approve"
	if d := r.PostForm.Get("decision"); d != "approve" && d != "refuse" {
		s.errorPage(w, r, http.StatusBadRequest, "decision: approve or refuse")
		return
	}
	run := r.PathValue("run")
	if err := s.approve(r.Context(), principalOf(r.Context()), run, approveInput{Approved: &yes, Comment: r.PostForm.Get("comment")}); err != nil {
		s.formFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/runs/"+pathEscape(run)+"?done=approved", http.StatusSeeOther)
}

func (s *server) formAck(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	assert, fp := r.PathValue("assert"), r.PathValue("fingerprint")
	if err := s.ack(r.Context(), principalOf(r.Context()), assert, fp, ackInput{Comment: r.PostForm.Get("comment")}); err != nil {
		s.formFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/instances/"+pathEscape(assert)+"/"+pathEscape(fp)+"?done=ack", http.StatusSeeOther)
}

// formBreakGlass starts a remediation from the break-glass page: the reason
// and the confirmation box are required.
func (s *server) formBreakGlass(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	f := r.PostForm
	if f.Get("confirm") != "yes" {
		s.errorPage(w, r, http.StatusBadRequest, "confirm: tick the box to confirm that the remediation should run")
		return
	}
	in, err := s.findInstance(r.Context(), f.Get("assert"), f.Get("fingerprint"))
	if err != nil {
		s.formFail(w, r, err)
		return
	}
	run, err := s.breakGlass(r.Context(), principalOf(r.Context()), breakGlassInput{Remediation: f.Get("remediation"), Assert: in.Assert,
		Labels: in.Labels, Reason: strings.TrimSpace(f.Get("reason")), DryRun: f.Get("dry_run") == "yes"})
	if err != nil {
		s.formFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/runs/"+pathEscape(run.ID), http.StatusSeeOther)
}

// formCloseBreaker closes an assert's blast-radius breaker from its page:
// the reason is required.
func (s *server) formCloseBreaker(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	assert := r.PostForm.Get("assert")
	if _, err := s.closeBreaker(r.Context(), principalOf(r.Context()), breakerCloseInput{Assert: assert, Reason: r.PostForm.Get("reason")}); err != nil {
		s.formFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/asserts/"+pathEscape(assert)+"?done=breaker", http.StatusSeeOther)
}
