package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/PagerDuty/go-pagerduty/webhookv3"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/store"
)

// pdEvent is the part of a PagerDuty v3 webhook assertd reads.
type pdEvent struct {
	Event struct {
		ID        string `json:"id"`
		EventType string `json:"event_type"`
		Agent     *struct {
			Summary string `json:"summary"`
		} `json:"agent"`
		Data struct {
			ID          string `json:"id"`
			IncidentKey string `json:"incident_key"`
		} `json:"data"`
	} `json:"event"`
}

// pagerDutyWebhook takes the v3 webhooks of a PagerDuty subscription
// (signed: X-PagerDuty-Signature carries v1=<hex HMAC-SHA256 of the body>,
// one per secret while one is rotated, checked with go-pagerduty's
// webhookv3). An incident acknowledged or resolved in PagerDuty
// acknowledges the instances whose page opened it, through the same
// operation as the API: their escalation stops (assertd resolves an
// instance itself, when it recovers). An incident assertd did not open is
// counted and ignored; an event delivered again is applied once.
func (s *server) pagerDutyWebhook(w http.ResponseWriter, r *http.Request) {
	_, hooks := s.d.ChatOps.snapshot()
	if len(hooks) == 0 {
		s.signed.count("pagerduty", resultUnprepared)
		writeError(w, http.StatusNotFound, "", "PagerDuty webhooks are not configured: give a pagerduty notifier webhook_secret_env or webhook_secret_file")
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, bodyErrorStatus(err), "body", "reading the body: "+err.Error())
		return
	}
	var hook *pdHook
	for i := range hooks {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if webhookv3.VerifySignature(r, hooks[i].secret) == nil {
			hook = &hooks[i]
			break
		}
	}
	if hook == nil {
		s.signed.count("pagerduty", resultUnsigned)
		s.log.Warn("pagerduty webhook refused: not signed with a webhook secret of this assertd", "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "", "the request is not signed by PagerDuty with a webhook secret of this assertd")
		return
	}
	var ev pdEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		s.signed.count("pagerduty", resultIgnored)
		writeError(w, http.StatusBadRequest, "body", "not a PagerDuty v3 webhook: "+err.Error())
		return
	}
	e := ev.Event
	var comment string
	switch e.EventType {
	case "incident.acknowledged":
		comment = "acknowledged in PagerDuty"
	case "incident.resolved":
		comment = "resolved in PagerDuty"
	default:
		s.signed.count("pagerduty", resultIgnored)
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored", "event_type": e.EventType})
		return
	}
	if e.ID != "" {
		// PagerDuty delivers at least once; its event ID names a delivery.
		fresh, full := s.replays.first("pagerduty/"+e.ID, time.Now().Add(time.Hour))
		if full {
			writeError(w, http.StatusServiceUnavailable, "", "too many webhooks in the last hour: deliver it again later")
			return
		}
		if !fresh {
			s.signed.count("pagerduty", resultDuplicate)
			writeJSON(w, http.StatusOK, map[string]string{"status": "already received", "event": e.ID})
			return
		}
	}
	targets, err := s.pagedBy(r, hook.channel, e.Data.IncidentKey)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	if len(targets) == 0 {
		s.signed.count("pagerduty", resultUnknown)
		s.log.Info("pagerduty webhook: an incident assertd did not open", "incident", e.Data.ID, "event", e.EventType)
		writeJSON(w, http.StatusOK, map[string]string{"status": "unknown incident", "incident": e.Data.ID})
		return
	}
	p := principal{Name: "pagerduty", Role: roleAdmin}
	if e.Agent != nil && strings.TrimSpace(e.Agent.Summary) != "" {
		p.Name = "pagerduty:" + strings.TrimSpace(e.Agent.Summary)
	}
	acked := []string{}
	for _, t := range targets {
		assert, fp := t[0], t[1]
		err := s.ack(r.Context(), p, assert, fp, ackInput{Comment: comment + " (incident " + e.Data.ID + ")"})
		switch {
		case err == nil:
			s.signed.count("pagerduty", resultApplied)
			acked = append(acked, assert+"/"+fp)
		case errors.Is(err, engine.ErrNotEscalated), errors.Is(err, store.ErrNotFound):
			s.signed.count("pagerduty", resultFailed) // recovered already, or forgotten
		default:
			s.apiFail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "acknowledged", "instances": acked})
}

// pagedBy returns the instances (assert, fingerprint) whose delivered pages
// on channel opened or joined the incident of this dedup key.
func (s *server) pagedBy(r *http.Request, channel, dedupKey string) ([][2]string, error) {
	if dedupKey == "" {
		return nil, nil
	}
	// The dedup key of an instance's own incident names it (assertd/<assert>/<fingerprint>);
	// a group's, or one shortened to PagerDuty's 255 bytes, is found among the
	// channel's latest pages.
	filters := []store.MessageFilter{{Channel: channel, Status: assertd.MsgDelivered, Limit: 10000}}
	if k, ok := strings.CutPrefix(dedupKey, "assertd/"); ok {
		filters = append([]store.MessageFilter{{Channel: channel, Status: assertd.MsgDelivered, DedupKey: k}}, filters...)
	}
	var msgs []assertd.Message
	for _, f := range filters {
		var err error
		if msgs, err = s.d.Store.Messages(r.Context(), f); err != nil {
			return nil, err
		}
		if slices.ContainsFunc(msgs, func(m assertd.Message) bool { return m.ProviderID == dedupKey }) {
			break
		}
	}
	var out [][2]string
	for _, m := range msgs {
		if m.ProviderID != dedupKey || m.Kind != string(assertd.NoticeTrigger) {
			continue
		}
		i := strings.LastIndex(m.DedupKey, "/")
		if i <= 0 {
			continue
		}
		t := [2]string{m.DedupKey[:i], m.DedupKey[i+1:]}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}
