package web

import (
	"net/http"
)

// This file: the changing routes of the JSON API (admin only; see routes.go).

func (s *server) apiCreateSilence(w http.ResponseWriter, r *http.Request) {
	var in silenceInput
	if err := decodeJSON(r, &in); err != nil {
		s.apiFail(w, r, err)
		return
	}
	si, err := s.createSilence(r.Context(), principalOf(r.Context()), in)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, silenceView{Silence: si, Active: si.ActiveAt(s.now()), Match: matchersString(si.Matchers)})
}

func (s *server) apiExpireSilence(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.expireSilence(r.Context(), principalOf(r.Context()), id); err != nil {
		s.apiFail(w, r, err)
		return
	}
	si, err := s.d.Store.Silence(r.Context(), id)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, silenceView{Silence: si, Active: si.ActiveAt(s.now()), Match: matchersString(si.Matchers)})
}

func (s *server) apiPutSetting(w http.ResponseWriter, r *http.Request) {
	var in settingInput
	if err := decodeJSON(r, &in); err != nil {
		s.apiFail(w, r, err)
		return
	}
	st, err := s.putSetting(r.Context(), principalOf(r.Context()), r.PathValue("key"), in)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *server) apiDeleteSetting(w http.ResponseWriter, r *http.Request) {
	reason := r.URL.Query().Get("reason")
	if err := s.deleteSetting(r.Context(), principalOf(r.Context()), r.PathValue("key"), reason); err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "back to the configured default", "key": r.PathValue("key")})
}

func (s *server) apiApprove(w http.ResponseWriter, r *http.Request) {
	var in approveInput
	if err := decodeJSON(r, &in); err != nil {
		s.apiFail(w, r, err)
		return
	}
	if err := s.approve(r.Context(), principalOf(r.Context()), r.PathValue("run"), in); err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"run_id": r.PathValue("run"), "approved": *in.Approved})
}

func (s *server) apiAck(w http.ResponseWriter, r *http.Request) {
	var in ackInput
	if err := decodeJSON(r, &in); err != nil {
		s.apiFail(w, r, err)
		return
	}
	assert, fp := r.PathValue("assert"), r.PathValue("fingerprint")
	if err := s.ack(r.Context(), principalOf(r.Context()), assert, fp, in); err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "acknowledged", "assert": assert, "fingerprint": fp})
}

func (s *server) apiBreakGlass(w http.ResponseWriter, r *http.Request) {
	var in breakGlassInput
	if err := decodeJSON(r, &in); err != nil {
		s.apiFail(w, r, err)
		return
	}
	run, err := s.breakGlass(r.Context(), principalOf(r.Context()), in)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, run)
}

func (s *server) apiCloseBreaker(w http.ResponseWriter, r *http.Request) {
	var in breakerCloseInput
	if err := decodeJSON(r, &in); err != nil {
		s.apiFail(w, r, err)
		return
	}
	b, err := s.closeBreaker(r.Context(), principalOf(r.Context()), in)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *server) apiSetLifecycle(w http.ResponseWriter, r *http.Request) {
	var in lifecycleInput
	if err := decodeJSON(r, &in); err != nil {
		s.apiFail(w, r, err)
		return
	}
	if err := s.setLifecycle(r.Context(), principalOf(r.Context()), in); err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"lifecycles": s.d.Engine.Lifecycles()})
}

// reload reloads the configuration from its files, as SIGHUP does: 200 when
// the new one is in force, 500 with the reason when it was refused (the last
// good one keeps running). Audited under the token's name.
func (s *server) reload(w http.ResponseWriter, r *http.Request) {
	if s.d.Reload == nil {
		writeError(w, http.StatusNotImplemented, "", "this assertd does not reload from its files")
		return
	}
	err := s.d.Reload(r.Context())
	s.auditRequest(r.Context(), principalOf(r.Context()), "config.reload", "", "", err)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", "reload refused, the last good configuration keeps running: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}
