package testsaas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// This file: what Slack and PagerDuty send to assertd — a click on a
// button of a Slack message (an interaction payload signed with the app's
// signing secret) and a PagerDuty v3 webhook (signed with the
// subscription's secret).

// Click is a Slack block_actions interaction: user clicked the button with
// this action ID on a message the fake accepted.
type Click struct {
	Body   string      // the form-encoded request body: payload=<JSON>
	Header http.Header // Content-Type and the signature headers
}

// Click builds the interaction Slack posts when user clicks the button
// actionID of the message p, signed with secret at ts. Its response_url
// points at the fake, which records what is posted there with the clicked
// message's ts. It fails when p has no such button.
func (s *Slack) Click(p Post, actionID, user, secret string, ts time.Time) (Click, error) {
	var blocks []map[string]any
	if err := json.Unmarshal([]byte(p.Blocks), &blocks); err != nil {
		return Click{}, fmt.Errorf("the message's blocks: %w", err)
	}
	var action map[string]any
	for _, b := range blocks {
		if b["type"] != "actions" {
			continue
		}
		els, _ := b["elements"].([]any)
		for _, e := range els {
			if el, _ := e.(map[string]any); el["action_id"] == actionID {
				action = map[string]any{"type": "button", "action_id": actionID, "block_id": b["block_id"], "value": el["value"],
					"text": el["text"], "action_ts": strconv.FormatInt(ts.Unix(), 10) + ".000100"}
			}
		}
	}
	if action == nil {
		return Click{}, fmt.Errorf("the message %s has no button %s: %s", p.TS, actionID, p.Blocks)
	}
	payload := map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": user, "username": strings.ToLower(user), "team_id": "T000"},
		"team":         map[string]any{"id": "T000", "domain": "example"},
		"api_app_id":   "A000",
		"container":    map[string]any{"type": "message", "message_ts": p.TS, "channel_id": p.Channel},
		"channel":      map[string]any{"id": p.Channel, "name": strings.TrimPrefix(p.Channel, "C")},
		"message":      map[string]any{"type": "message", "ts": p.TS, "text": p.Text, "blocks": blocks},
		"response_url": s.APIURL + "response/" + p.TS,
		"trigger_id":   "1337.42.abcd",
		"actions":      []any{action},
	}
	raw, _ := json.Marshal(payload)
	body := url.Values{"payload": {string(raw)}}.Encode()
	h := SignSlack(secret, ts, body)
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return Click{Body: body, Header: h}, nil
}

// SignSlack returns Slack's signature headers of body at ts:
// X-Slack-Request-Timestamp and X-Slack-Signature (v0=HMAC-SHA256 of
// "v0:<ts>:<body>").
func SignSlack(secret string, ts time.Time, body string) http.Header {
	t := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", t, body)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", t)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return h
}

// Webhook is a PagerDuty v3 webhook delivery: its body and headers.
type Webhook struct {
	Body   string
	Header http.Header
}

// Webhook builds the v3 webhook PagerDuty posts when the incident of this
// dedup key changes (event: incident.acknowledged, incident.resolved …),
// made by agent, signed with each of secrets (PagerDuty signs with every
// secret of a subscription while one is rotated).
func (p *PagerDuty) Webhook(event, dedupKey, agent string, at time.Time, secrets ...string) Webhook {
	p.mu.Lock()
	p.webhooks++
	n := p.webhooks
	p.mu.Unlock()
	body := map[string]any{"event": map[string]any{
		"id":            fmt.Sprintf("01EVT%08d", n),
		"event_type":    event,
		"resource_type": "incident",
		"occurred_at":   at.UTC().Format(time.RFC3339),
		"agent":         map[string]any{"id": "PAGENT1", "type": "user_reference", "summary": agent, "html_url": "https://example.pagerduty.com/users/PAGENT1"},
		"data": map[string]any{
			"id": "Q" + strings.ToUpper(hex.EncodeToString([]byte(dedupKey))[:12]), "type": "incident", "number": n,
			"incident_key": dedupKey, "title": "assertd incident", "status": strings.TrimPrefix(event, "incident."),
			"html_url": "https://example.pagerduty.com/incidents/Q1",
			"service":  map[string]any{"id": "PSERVICE", "type": "service_reference", "summary": "assertd"},
		},
	}}
	raw, _ := json.Marshal(body)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	var sigs []string
	for _, s := range secrets {
		sigs = append(sigs, "v1="+SignPagerDuty(s, raw))
	}
	h.Set("X-PagerDuty-Signature", strings.Join(sigs, ","))
	h.Set("X-Webhook-Id", fmt.Sprintf("wh-%d", n))
	return Webhook{Body: string(raw), Header: h}
}

// SignPagerDuty is the hex HMAC-SHA256 of body with secret, as PagerDuty
// signs a v3 webhook.
func SignPagerDuty(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}
