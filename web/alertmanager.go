package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/alerts"
	"github.com/assertd/assertd/sources"
)

// alertmanagerPath is where an Alertmanager webhook_configs receiver posts.
const alertmanagerPath = "/api/v1/alertmanager"

// AlertIntake takes the alerts posted to the webhook (*alerts.Feed).
type AlertIntake interface {
	Update(sender string, as []alerts.Alert, at time.Time) alerts.Result
}

// amPayload is Alertmanager's webhook payload, version 4.
type amPayload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []amAlert         `json:"alerts"`
}

type amAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// alertMetrics count what the webhook received.
type alertMetrics struct {
	notifications *prometheus.CounterVec
	alerts        *prometheus.CounterVec
	unmatched     prometheus.Counter
}

func newAlertMetrics() *alertMetrics {
	return &alertMetrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_alertmanager_notifications_total",
			Help: "Alertmanager webhook notifications received, by result (applied, invalid)."}, []string{"result"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_alertmanager_alerts_total",
			Help: "Alerts in Alertmanager webhook notifications, by what they did (new, repeated, resolved, ignored)."}, []string{"result"}),
		unmatched: prometheus.NewCounter(prometheus.CounterOpts{Name: "assertd_alertmanager_alerts_unmatched_total",
			Help: "Alerts received from Alertmanager that no alert-triggered assert selects: kept in the feed, acted on by nothing."}),
	}
}

func (m *alertMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.notifications, m.alerts, m.unmatched} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// alertmanagerWebhook applies one Alertmanager notification to the alert
// feed, all of it or (for a malformed one) nothing, and makes the
// alert-triggered asserts that select its alerts due at once.
func (s *server) alertmanagerWebhook(w http.ResponseWriter, r *http.Request) {
	as, err := readAMPayload(r.Body)
	if err != nil {
		s.alertMetrics.notifications.WithLabelValues("invalid").Inc()
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			writeError(w, http.StatusRequestEntityTooLarge, "body", fmt.Sprintf("the body is larger than %d bytes", MaxBody))
			return
		}
		writeError(w, http.StatusBadRequest, "body", err.Error())
		return
	}
	var due []string
	unmatched := 0
	set := s.d.Engine.Config()
	for _, a := range as {
		matched := false
		for _, c := range set.Asserts {
			if c.Trigger != nil && c.Trigger.Sender == alerts.SenderAlertmanager && c.Trigger.Set.Matches(a.Labels) {
				matched = true
				if !slices.Contains(due, c.Name) {
					due = append(due, c.Name)
				}
			}
		}
		if !matched {
			unmatched++
		}
	}
	res := s.d.Alerts.Update(alerts.SenderAlertmanager, as, s.now())
	s.alertMetrics.notifications.WithLabelValues("applied").Inc()
	for k, n := range map[string]int{"new": res.New, "repeated": res.Repeated, "resolved": res.Resolved, "ignored": res.Ignored} {
		s.alertMetrics.alerts.WithLabelValues(k).Add(float64(n))
	}
	s.alertMetrics.unmatched.Add(float64(unmatched))
	if unmatched > 0 {
		s.log.Debug("alerts no assert selects", "count", unmatched)
	}
	if len(due) > 0 {
		s.d.Engine.EvaluateSoon(due...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "success", "alerts": len(as), "new": res.New, "repeated": res.Repeated,
		"resolved": res.Resolved, "ignored": res.Ignored, "unmatched": unmatched, "asserts": due})
}

// readAMPayload decodes and checks a notification; any problem refuses all
// of it.
func readAMPayload(body io.Reader) ([]alerts.Alert, error) {
	var p amPayload
	dec := json.NewDecoder(body)
	// Unknown fields are accepted: a later Alertmanager may add some.
	if err := dec.Decode(&p); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, err
		}
		return nil, fmt.Errorf("not an Alertmanager webhook payload: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, err
		}
		return nil, errors.New("one JSON object is expected; there is more after it")
	}
	if p.Version != "4" {
		return nil, fmt.Errorf("version %q: assertd reads Alertmanager's webhook payload version 4 (a webhook_configs receiver)", p.Version)
	}
	out := make([]alerts.Alert, 0, len(p.Alerts))
	ext := strings.TrimRight(p.ExternalURL, "/")
	for i, a := range p.Alerts {
		if len(a.Labels) == 0 {
			return nil, fmt.Errorf("alerts[%d] has no labels", i)
		}
		for k := range a.Labels {
			if !validLabelName(k) {
				return nil, fmt.Errorf("alerts[%d]: label name %q is not valid", i, k)
			}
		}
		if a.StartsAt.IsZero() {
			return nil, fmt.Errorf("alerts[%d] has no startsAt", i)
		}
		al := alerts.Alert{Labels: assertd.Labels(a.Labels), Annotations: assertd.Labels(a.Annotations), StartsAt: a.StartsAt,
			GeneratorURL: a.GeneratorURL, ExternalURL: ext}
		switch a.Status {
		case "firing":
			al.State = alerts.Firing
		case "resolved":
			al.State, al.EndsAt = alerts.Resolved, a.EndsAt
		default:
			return nil, fmt.Errorf("alerts[%d] has status %q: firing or resolved", i, a.Status)
		}
		out = append(out, al)
	}
	return out, nil
}

// validLabelName reports whether s is a label name Prometheus accepts.
func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// PromAPI is Prometheus' query API over the embedded TSDB (*sources.PromAPI).
type PromAPI interface {
	Handler(path string) http.HandlerFunc
}

// promRoutes are the routes of Prometheus' query API: GET, and POST for a
// long query, with the read role (a POST here changes nothing).
func (s *server) promRoutes() []route {
	if s.d.PromAPI == nil {
		return nil
	}
	var out []route
	for _, p := range sources.PromAPIPaths {
		h := s.d.PromAPI.Handler(p)
		out = append(out, route{method: "GET", path: p, role: roleRead, api: true, h: h})
		if !strings.Contains(p, "{name}") {
			out = append(out, route{method: "POST", path: p, role: roleRead, api: true, reads: true, h: h})
		}
	}
	return out
}
