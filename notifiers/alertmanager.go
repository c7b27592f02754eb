package notifiers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/alerts/amclient"
)

// alertLifetime is how long a page stays firing in Alertmanager without a
// repeat: the resolve ends it sooner.
const alertLifetime = 24 * time.Hour

// Alertmanager forwards pages to Alertmanagers as alerts (POST
// /api/v2/alerts on every one, as Prometheus sends to all), so that
// whatever Alertmanager reaches — email, Opsgenie, Teams — is reached from
// assertd, with routing, inhibition and silences done there. A resolve ends
// the alerts; informational messages are not alerts and are not sent.
type Alertmanager struct {
	clients []*amclient.Client
	ui      string
}

func newAlertmanager(urls []string, hc *http.Client, ui string) *Alertmanager {
	a := &Alertmanager{ui: ui}
	for _, u := range urls {
		a.clients = append(a.clients, &amclient.Client{URL: u, HTTP: hc})
	}
	return a
}

// alertOf is the alert of a notice: alertname is the assert.
func (a *Alertmanager) alertOf(n assertd.Notice, m *Message) amclient.Alert {
	ls := map[string]string(n.Labels.Copy())
	if ls == nil {
		ls = map[string]string{}
	}
	ls["alertname"] = n.Assert
	ann := maps.Clone(n.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	if _, ok := ann["summary"]; !ok {
		ann["summary"] = n.Reason
	}
	if n.Description != "" {
		ann["description"] = n.Description
	}
	al := amclient.Alert{Labels: ls, Annotations: ann, StartsAt: n.Since, GeneratorURL: uiLink(m.UI, n)}
	if n.GeneratorURL != "" && al.GeneratorURL == "" {
		al.GeneratorURL = n.GeneratorURL
	}
	if al.StartsAt.IsZero() {
		al.StartsAt = m.At
	}
	return al
}

// Notify posts m's alerts to every Alertmanager. It is delivered once all
// of them took it; otherwise it is retried (posting an alert again is
// idempotent), so an Alertmanager that restarts gets it when it is back.
func (a *Alertmanager) Notify(ctx context.Context, m *Message) (bool, error) {
	var as []amclient.Alert
	switch m.Kind {
	case assertd.NoticeTrigger:
		for _, n := range m.Notices {
			al := a.alertOf(n, m)
			al.EndsAt = m.At.Add(alertLifetime)
			as = append(as, al)
		}
	case assertd.NoticeResolve:
		if !m.Resolved {
			return false, nil
		}
		for _, n := range m.Notices {
			al := a.alertOf(n, m)
			al.EndsAt = m.At
			as = append(as, al)
		}
	default:
		return false, nil // informational messages and acknowledgements are no alerts
	}
	var errs []error
	recoverable := false
	for _, c := range a.clients {
		if err := c.PostAlerts(ctx, as); err != nil {
			errs = append(errs, err)
			var se *amclient.StatusError
			if !errors.As(err, &se) || se.Code == 429 || se.Code >= 500 || se.Code == 408 {
				recoverable = true
			}
		}
	}
	if len(errs) > 0 {
		return recoverable, fmt.Errorf("alertmanager: %w", errors.Join(errs...))
	}
	m.ProviderID = m.DedupKey
	return false, nil
}
