package promrules

import (
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
)

// API is the groups in force as Prometheus' GET /api/v1/rules shows them,
// each rule with its identity (file, group, index from 1).
func (e *Evaluator) API() RulesView {
	out := RulesView{Groups: []GroupView{}}
	for _, g := range e.Groups() {
		gv := GroupView{Name: g.Name(), File: g.File(), Interval: g.Interval().Seconds(), Limit: g.Limit(),
			EvaluationTime: g.GetEvaluationTime().Seconds(), LastEvaluation: g.GetLastEvalTimestamp(), Rules: []RuleView{}}
		for i, r := range g.Rules() {
			rv := RuleView{RuleID: RuleID{File: g.File(), Group: g.Name(), Index: i + 1, Name: r.Name()}, Query: r.Query().String(),
				Labels: r.Labels(), Health: string(r.Health()), EvaluationTime: r.GetEvaluationDuration().Seconds(),
				LastEvaluation: g.GetLastEvalTimestamp(), Type: "recording"}
			if err := r.LastError(); err != nil {
				rv.LastError = err.Error()
			}
			if ar, ok := r.(*rules.AlertingRule); ok {
				rv.Type, rv.State = "alerting", ar.State().String()
				rv.Duration, rv.KeepFiringFor = ar.HoldDuration().Seconds(), ar.KeepFiringFor().Seconds()
				rv.Annotations = ar.Annotations()
				rv.Alerts = []AlertView{}
				for _, a := range ar.ActiveAlerts() {
					av := AlertView{Labels: a.Labels, Annotations: a.Annotations, State: a.State.String(), ActiveAt: a.ActiveAt,
						Value: strconv.FormatFloat(a.Value, 'e', -1, 64)}
					if !a.KeepFiringSince.IsZero() {
						av.KeepFiringSince = &a.KeepFiringSince
					}
					rv.Alerts = append(rv.Alerts, av)
				}
			}
			gv.Rules = append(gv.Rules, rv)
		}
		out.Groups = append(out.Groups, gv)
	}
	return out
}

// RulesView is the data of GET /api/v1/rules.
type RulesView struct {
	Groups []GroupView `json:"groups"`
}

// GroupView is one rule group.
type GroupView struct {
	Name           string     `json:"name"`
	File           string     `json:"file"`
	Interval       float64    `json:"interval"`
	Limit          int        `json:"limit"`
	Rules          []RuleView `json:"rules"`
	EvaluationTime float64    `json:"evaluationTime"`
	LastEvaluation time.Time  `json:"lastEvaluation"`
}

// RuleView is one rule, with its identity.
type RuleView struct {
	RuleID
	Type           string        `json:"type"`
	State          string        `json:"state,omitempty"`
	Query          string        `json:"query"`
	Duration       float64       `json:"duration,omitempty"`
	KeepFiringFor  float64       `json:"keepFiringFor,omitempty"`
	Labels         labels.Labels `json:"labels"`
	Annotations    labels.Labels `json:"annotations,omitzero"`
	Alerts         []AlertView   `json:"alerts,omitempty"`
	Health         string        `json:"health"`
	LastError      string        `json:"lastError,omitempty"`
	EvaluationTime float64       `json:"evaluationTime"`
	LastEvaluation time.Time     `json:"lastEvaluation"`
}

// AlertView is one active alert.
type AlertView struct {
	Labels          labels.Labels `json:"labels"`
	Annotations     labels.Labels `json:"annotations"`
	State           string        `json:"state"`
	ActiveAt        time.Time     `json:"activeAt"`
	KeepFiringSince *time.Time    `json:"keepFiringSince,omitempty"`
	Value           string        `json:"value"`
}
