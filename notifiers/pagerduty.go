package notifiers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
)

// PagerDuty limits.
const (
	pdMaxSummary  = 1024
	pdMaxEvent    = 512 << 10
	pdMaxDedupKey = 255
	// DefaultEventsURL is PagerDuty's Events API v2 endpoint.
	DefaultEventsURL = "https://events.pagerduty.com/v2/enqueue"
)

// PagerDuty sends Events API v2 events with go-pagerduty: trigger with a
// stable dedup key, resolve on recovery. 429, 5xx, timeouts and network
// errors are retried; a 400 is a refusal (the event will never be taken).
//
// An acknowledgement made in assertd is sent as an acknowledge event for
// the incident's dedup key. With change_events, the informational
// messages of remediation runs are sent as change events (they show on
// the service's timeline) instead of incidents. Approval requests are not
// sent: PagerDuty has no way to answer them.
type PagerDuty struct {
	key     string
	client  *pagerduty.Client
	ui      string
	changes bool
}

func newPagerDuty(c *config.PagerDuty, key string, hc *http.Client, ui string) *PagerDuty {
	u := c.EventsURL
	if u == "" {
		u = DefaultEventsURL
	}
	// The client appends /v2/enqueue to its endpoint.
	cl := pagerduty.NewClient("", pagerduty.WithV2EventsAPIEndpoint(strings.TrimSuffix(strings.TrimRight(u, "/"), "/v2/enqueue")))
	cl.HTTPClient = hc
	return &PagerDuty{key: key, client: cl, ui: ui, changes: c.ChangeEvents}
}

// DedupKey is the PagerDuty dedup key of an incident key (assert/fingerprint
// or a group's key): stable, at most 255 bytes.
func DedupKey(incident string) string { return stableKey("assertd/"+incident, pdMaxDedupKey) }

// Notify sends m as one event.
func (p *PagerDuty) Notify(ctx context.Context, m *Message) (bool, error) {
	n := m.Notices[0]
	switch {
	case m.Kind == assertd.NoticeInfo && n.Approval != "":
		m.ProviderID = ""
		return false, nil
	case m.Kind == assertd.NoticeInfo && p.changes && n.RunID != "":
		return p.change(ctx, m)
	}
	e := p.event(m)
	if e == nil { // a grouped resolve whose group still fires
		m.ProviderID = m.Thread
		return false, nil
	}
	ctx, c := withCapture(ctx)
	resp, err := p.client.ManageEventWithContext(ctx, e)
	if err != nil {
		return classifyPD(err, c)
	}
	if resp == nil || resp.Status != "success" {
		return true, fmt.Errorf("pagerduty: unexpected answer (HTTP %d): %s", c.status, c.excerpt())
	}
	m.ProviderID = e.DedupKey
	return false, nil
}

func classifyPD(err error, c *capture) (bool, error) {
	var api pagerduty.APIError
	if errors.As(err, &api) {
		err = fmt.Errorf("pagerduty: HTTP %d: %s", api.StatusCode, c.excerpt())
		if !retryableStatus(api.StatusCode) {
			return false, fmt.Errorf("pagerduty refused the event: %w", err)
		}
		if ra := retryAfterHeader(c.retryAfter, time.Now()); ra > 0 {
			err = &RetryAfterError{After: ra, Err: err}
		}
		return true, err
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) || c.status != 0 {
		return true, fmt.Errorf("pagerduty: garbled answer (HTTP %d): %s", c.status, c.excerpt())
	}
	return true, fmt.Errorf("pagerduty: %w", err)
}

// event builds the event of m, or nil when nothing is to be sent.
func (p *PagerDuty) event(m *Message) *pagerduty.V2Event {
	n := m.Notices[0]
	key := DedupKey(m.DedupKey)
	if m.Thread != "" {
		key = m.Thread // the incident this channel opened (a group's, maybe)
	}
	switch m.Kind {
	case assertd.NoticeResolve:
		if !m.Resolved {
			return nil
		}
		return &pagerduty.V2Event{RoutingKey: p.key, Action: "resolve", DedupKey: key}
	case assertd.NoticeAck:
		return &pagerduty.V2Event{RoutingKey: p.key, Action: "acknowledge", DedupKey: key}
	}
	sum := summary(n)
	if len(m.Notices) > 1 {
		sum = fmt.Sprintf("%d instances: %s", len(m.Notices), sum)
	}
	source := n.Labels["instance"]
	if source == "" {
		source = "assertd"
	}
	e := &pagerduty.V2Event{RoutingKey: p.key, Action: "trigger", DedupKey: key, Client: "assertd",
		Payload: &pagerduty.V2Payload{
			Summary: truncate(state(m)+": "+n.Assert+": "+sum, pdMaxSummary), Source: source, Severity: severity(n),
			Timestamp: n.At.UTC().Format(time.RFC3339), Component: n.Assert, Group: n.Labels["job"], Class: "assertd",
		}}
	if link := uiLink(m.UI, n); link != "" {
		e.ClientURL = link
		e.Links = []any{map[string]string{"href": link, "text": "assertd: " + n.Assert}}
	}
	if n.GeneratorURL != "" {
		e.Links = append(e.Links, map[string]string{"href": n.GeneratorURL, "text": "the alert's source"})
	}
	for _, steplog := range []int{64 << 10, 16 << 10, 4 << 10, 1 << 10, 0} {
		e.Payload.Details = details(m, steplog)
		if b, err := json.Marshal(e); err == nil && len(b) <= pdMaxEvent {
			return e
		}
	}
	e.Payload.Details = map[string]any{"note": "details too large for PagerDuty: see assertd", "instances": len(m.Notices)}
	return e
}

// details are the custom_details of an event; step logs are cut to keep
// the event under PagerDuty's 512 KB.
func details(m *Message, steplog int) map[string]any {
	var inst []map[string]any
	for i, n := range m.Notices {
		if i == 100 {
			inst = append(inst, map[string]any{"more": len(m.Notices) - i})
			break
		}
		d := map[string]any{"assert": n.Assert, "labels": n.Labels, "state": n.State, "reason": truncate(n.Reason, 4096)}
		if len(n.Values) > 0 {
			d["values"] = n.Values
		}
		if n.Description != "" {
			d["description"] = truncate(n.Description, 4096)
		}
		if n.RunID != "" {
			d["run_id"] = n.RunID
		}
		if n.GeneratorURL != "" {
			d["generator_url"] = n.GeneratorURL
		}
		if n.StepLog != "" && steplog >= 256 {
			d["step_log"] = tail(n.StepLog, steplog/max(1, min(len(m.Notices), 100)))
		}
		if len(n.Annotations) > 0 {
			a := map[string]string{}
			for k, v := range n.Annotations {
				a[k] = truncate(v, 4096)
			}
			d["annotations"] = a
		}
		if !n.Since.IsZero() {
			d["since"] = n.Since.UTC().Format(time.RFC3339)
		}
		inst = append(inst, d)
	}
	if len(inst) == 1 {
		return inst[0]
	}
	return map[string]any{"instances": inst}
}

// change sends an informational message of a remediation run as a change
// event.
func (p *PagerDuty) change(ctx context.Context, m *Message) (bool, error) {
	n := m.Notices[0]
	source := n.Labels["instance"]
	if source == "" {
		source = "assertd"
	}
	e := pagerduty.ChangeEvent{RoutingKey: p.key, Payload: pagerduty.ChangeEventPayload{
		Summary: truncate("assertd: "+n.Assert+": "+summary(n), pdMaxSummary), Source: source,
		Timestamp: n.At.UTC().Format(time.RFC3339), CustomDetails: details(m, 16<<10)}}
	if link := uiLink(m.UI, n); link != "" {
		e.Links = []pagerduty.ChangeEventLink{{Href: link, Text: "assertd: " + n.Assert}}
	}
	ctx, c := withCapture(ctx)
	resp, err := p.client.CreateChangeEventWithContext(ctx, e)
	if err != nil {
		return classifyPD(err, c)
	}
	if resp == nil || resp.Status != "success" {
		return true, fmt.Errorf("pagerduty: unexpected answer to a change event (HTTP %d): %s", c.status, c.excerpt())
	}
	m.ProviderID = ""
	return false, nil
}
