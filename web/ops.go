package web

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/engine"
)

// This file: the changes an operator makes, shared by the JSON API and the
// UI's forms. Each takes the caller (whose token name is recorded) and
// returns badInput errors that name the field.

// silenceInput is what creates a silence.
type silenceInput struct {
	// Matchers as written ({instance="db1"}) or as a list of objects.
	Matchers json.RawMessage `json:"matchers"`
	Starts   time.Time       `json:"starts_at,omitzero"` // default now
	Ends     time.Time       `json:"ends_at,omitzero"`
	Duration string          `json:"duration,omitempty"` // instead of ends_at, such as 2h; with cron: each window
	Cron     string          `json:"cron,omitempty"`
	Comment  string          `json:"comment"`

	match []assertd.Matcher // parsed
}

func (in *silenceInput) parseMatchers() error {
	raw := strings.TrimSpace(string(in.Matchers))
	if raw == "" || raw == "null" {
		return fieldErr("matchers", `at least one matcher is required, such as {instance="db1"}`)
	}
	if strings.HasPrefix(raw, `"`) {
		var text string
		if err := json.Unmarshal(in.Matchers, &text); err != nil {
			return fieldErr("matchers", "%v", err)
		}
		ms, err := ParseMatchers(text)
		if err != nil {
			return fieldErr("matchers", "%v", err)
		}
		in.match = ms
	} else if err := json.Unmarshal(in.Matchers, &in.match); err != nil {
		return fieldErr("matchers", "a string such as {instance=\"db1\"} or a list of {name, op, value}")
	}
	if len(in.match) == 0 {
		return fieldErr("matchers", `at least one matcher is required, such as {instance="db1"}`)
	}
	for _, m := range in.match {
		if err := m.Validate(); err != nil {
			return fieldErr("matchers", "%v", err)
		}
	}
	return nil
}

func (s *server) createSilence(ctx context.Context, p principal, in silenceInput) (assertd.Silence, error) {
	if err := in.parseMatchers(); err != nil {
		return assertd.Silence{}, err
	}
	if strings.TrimSpace(in.Comment) == "" {
		return assertd.Silence{}, fieldErr("comment", "say why, for the next person on call")
	}
	now := s.now()
	si := assertd.Silence{ID: "s-" + randomID()[:12], Matchers: in.match, Start: in.Starts, End: in.Ends, Cron: strings.TrimSpace(in.Cron),
		Author: p.Name, Comment: strings.TrimSpace(in.Comment), Created: now}
	if si.Start.IsZero() {
		si.Start = now
	}
	if in.Duration != "" {
		d, err := assertd.ParseDuration(in.Duration)
		if err != nil || d <= 0 {
			return si, fieldErr("duration", "%q is not a duration such as 2h", in.Duration)
		}
		if si.Cron != "" {
			si.Duration = assertd.Duration(d)
		} else if si.End.IsZero() {
			si.End = si.Start.Add(d)
		}
	}
	if si.Cron == "" && si.End.IsZero() {
		return si, fieldErr("duration", "give a duration (such as 2h) or ends_at")
	}
	if !si.End.IsZero() && !si.End.After(si.Start) {
		return si, fieldErr("ends_at", "the silence must end after it starts")
	}
	if err := si.Validate(); err != nil {
		field := "matchers"
		if si.Cron != "" {
			field = "cron"
		}
		return si, fieldErr(field, "%v", err)
	}
	if err := s.d.Store.PutSilence(ctx, si); err != nil {
		return si, err
	}
	s.d.Engine.SilencesChanged(ctx, now)
	s.log.Info("silence created", "id", si.ID, "by", p.Name, "matchers", matchersString(si.Matchers))
	return si, nil
}

func (s *server) expireSilence(ctx context.Context, p principal, id string) error {
	if err := s.d.Store.ExpireSilence(ctx, id, p.Name, s.now()); err != nil {
		return err
	}
	s.d.Engine.SilencesChanged(ctx, s.now())
	s.log.Info("silence expired", "id", id, "by", p.Name)
	return nil
}

// settingInput changes one runtime setting.
type settingInput struct {
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

func knownSetting(key string) bool {
	return key == assertd.SettingKillSwitch || key == assertd.SettingMaxConcurrentRuns || key == assertd.SettingRunBudget ||
		strings.HasPrefix(key, assertd.SettingRatePrefix)
}

func (s *server) putSetting(ctx context.Context, p principal, key string, in settingInput) (assertd.Setting, error) {
	st := assertd.Setting{Key: key, Value: strings.TrimSpace(in.Value), Updated: s.now(), By: p.Name, Reason: strings.TrimSpace(in.Reason)}
	if !knownSetting(key) {
		return st, fieldErr("key", "unknown setting %q: the settings are %s, %s, %s and %s<remediation>", key,
			assertd.SettingKillSwitch, assertd.SettingMaxConcurrentRuns, assertd.SettingRunBudget, assertd.SettingRatePrefix)
	}
	if err := st.Validate(); err != nil {
		return st, fieldErr("value", "%v", err)
	}
	if err := s.d.Store.PutSetting(ctx, st); err != nil {
		return st, err
	}
	s.log.Info("setting changed", "key", key, "value", st.Value, "by", p.Name, "reason", st.Reason)
	return st, nil
}

func (s *server) deleteSetting(ctx context.Context, p principal, key, reason string) error {
	if !knownSetting(key) {
		return fieldErr("key", "unknown setting %q", key)
	}
	return s.d.Store.DeleteSetting(ctx, key, p.Name, s.now(), reason)
}

// auditRequest records an operator's request that the engine carries out,
// with its outcome, under the token's name.
func (s *server) auditRequest(ctx context.Context, p principal, action, target, reason string, err error) {
	detail := "ok"
	if err != nil {
		detail = "refused: " + err.Error()
	}
	if _, aerr := s.d.Store.Audit(ctx, assertd.AuditEntry{At: s.now(), Actor: p.Name, Action: action, Target: target, Reason: reason, Detail: detail}); aerr != nil {
		s.log.Error("audit", "action", action, "by", p.Name, "err", aerr)
	}
}

// approveInput decides an approval.
type approveInput struct {
	Approved *bool  `json:"approved"`
	Comment  string `json:"comment"`
}

func (s *server) approve(ctx context.Context, p principal, runID string, in approveInput) error {
	if in.Approved == nil {
		return fieldErr("approved", "true to approve the run, false to refuse it")
	}
	err := s.d.Engine.Approve(ctx, runID, p.Name, *in.Approved, strings.TrimSpace(in.Comment), s.now())
	verb := "request.approve"
	if !*in.Approved {
		verb = "request.refuse"
	}
	s.auditRequest(ctx, p, verb, runID, in.Comment, err)
	return err
}

// ackInput acknowledges an instance's page.
type ackInput struct {
	Comment string `json:"comment"`
}

func (s *server) ack(ctx context.Context, p principal, assert, fp string, in ackInput) error {
	if _, err := s.findInstance(ctx, assert, fp); err != nil {
		return err
	}
	err := s.d.Engine.Acknowledge(ctx, assert, fp, p.Name, strings.TrimSpace(in.Comment), s.now())
	s.auditRequest(ctx, p, "request.acknowledge", assert+"/"+fp, in.Comment, err)
	return err
}

// breakGlassInput starts a remediation by hand.
type breakGlassInput struct {
	Remediation string         `json:"remediation"`
	Assert      string         `json:"assert,omitempty"` // default: the one assert that names the remediation
	Labels      assertd.Labels `json:"labels"`
	Reason      string         `json:"reason"`
	DryRun      bool           `json:"dry_run"`
}

func (s *server) breakGlass(ctx context.Context, p principal, in breakGlassInput) (assertd.Run, error) {
	set := s.d.Engine.Config()
	in.Remediation, in.Assert, in.Reason = strings.TrimSpace(in.Remediation), strings.TrimSpace(in.Assert), strings.TrimSpace(in.Reason)
	if in.Remediation == "" {
		return assertd.Run{}, fieldErr("remediation", "name the remediation to run")
	}
	if set == nil || set.Remediation(in.Remediation) == nil {
		return assertd.Run{}, fieldErr("remediation", "no remediation %q", in.Remediation)
	}
	if in.Reason == "" {
		return assertd.Run{}, fieldErr("reason", "a reason is required: it goes to the audit trail and the run")
	}
	if in.Assert == "" {
		var users []string
		for _, a := range set.Asserts {
			if a.Remediate == in.Remediation {
				users = append(users, a.Name)
			}
		}
		if len(users) != 1 {
			return assertd.Run{}, fieldErr("assert", "name the assert: %d asserts use remediation %s (%s)", len(users), in.Remediation, strings.Join(users, ", "))
		}
		in.Assert = users[0]
	} else if set.Assert(in.Assert) == nil {
		return assertd.Run{}, fieldErr("assert", "no assert %q", in.Assert)
	}
	if in.Labels == nil {
		in.Labels = assertd.Labels{}
	}
	for k := range in.Labels {
		if err := assertd.CheckLabelName(k); err != nil {
			return assertd.Run{}, fieldErr("labels", "%v", err)
		}
	}
	req := engine.BreakGlassRequest{Remediation: in.Remediation, Assert: in.Assert, Labels: in.Labels, Reason: in.Reason,
		DryRun: in.DryRun, By: p.Name, At: s.now()}
	run, err := s.d.Engine.BreakGlass(ctx, req)
	target := fmt.Sprintf("%s %s %s", in.Remediation, in.Assert, in.Labels)
	if in.DryRun {
		target += " (dry run)"
	}
	s.auditRequest(ctx, p, "request.break_glass", target, in.Reason, err)
	if err != nil {
		return run, err
	}
	s.log.Warn("break glass", "remediation", in.Remediation, "assert", in.Assert, "labels", in.Labels.String(), "by", p.Name, "reason", in.Reason, "run", run.ID, "dry_run", in.DryRun)
	return run, nil
}

// breakerCloseInput closes an assert's blast-radius breaker by hand.
type breakerCloseInput struct {
	Assert string `json:"assert"`
	Reason string `json:"reason"`
}

func (s *server) closeBreaker(ctx context.Context, p principal, in breakerCloseInput) (assertd.Breaker, error) {
	in.Assert, in.Reason = strings.TrimSpace(in.Assert), strings.TrimSpace(in.Reason)
	if in.Assert == "" {
		return assertd.Breaker{}, fieldErr("assert", "name the assert whose breaker to close")
	}
	if set := s.d.Engine.Config(); set == nil || set.Assert(in.Assert) == nil {
		return assertd.Breaker{}, fieldErr("assert", "no assert %q", in.Assert)
	}
	if in.Reason == "" {
		return assertd.Breaker{}, fieldErr("reason", "a reason is required: it goes to the audit trail (say why automation may act again)")
	}
	b, err := s.d.Engine.CloseBreaker(ctx, in.Assert, p.Name, in.Reason, s.now())
	s.auditRequest(ctx, p, "request.breaker_close", in.Assert, in.Reason, err)
	if err != nil {
		return b, err
	}
	s.log.Warn("blast-radius breaker closed", "assert", in.Assert, "by", p.Name, "reason", in.Reason)
	return b, nil
}

// breakerOf returns the breaker of an assert as it is now, or nil when it
// never tripped.
func (s *server) breakerOf(ctx context.Context, assert string) *assertd.Breaker {
	bs, err := s.d.Engine.Breakers(ctx, s.now())
	if err != nil {
		s.log.Warn("reading the blast-radius breakers", "err", err)
		return nil
	}
	for i := range bs {
		if bs[i].Assert == assert {
			return &bs[i]
		}
	}
	return nil
}

// openBreakers returns the breakers that are open now.
func (s *server) openBreakers(ctx context.Context) []assertd.Breaker {
	bs, err := s.d.Engine.Breakers(ctx, s.now())
	if err != nil {
		s.log.Warn("reading the blast-radius breakers", "err", err)
		return nil
	}
	var out []assertd.Breaker
	for _, b := range bs {
		if b.Open {
			out = append(out, b)
		}
	}
	return out
}

// lifecycleInput sets (or, with an empty state, removes) the lifecycle
// state of a target: every instance carrying its labels.
type lifecycleInput struct {
	Target assertd.Labels `json:"target"`
	State  string         `json:"state"`
	Reason string         `json:"reason"`
}

func (s *server) setLifecycle(ctx context.Context, p principal, in lifecycleInput) error {
	in.State, in.Reason = strings.TrimSpace(in.State), strings.TrimSpace(in.Reason)
	if len(in.Target) == 0 {
		return fieldErr("target", `give the target's labels, such as {"instance": "db3"}`)
	}
	for k := range in.Target {
		if err := assertd.CheckLabelName(k); err != nil {
			return fieldErr("target", "%v", err)
		}
	}
	if in.State != "" && !slices.Contains(engine.Lifecycles, in.State) {
		return fieldErr("state", "unknown lifecycle state %q: the states are %s (or \"\" to remove the override)", in.State, strings.Join(engine.Lifecycles, ", "))
	}
	if in.Reason == "" {
		return fieldErr("reason", "a reason is required: it goes to the audit trail")
	}
	err := s.d.Engine.SetLifecycle(ctx, in.Target, in.State, p.Name, in.Reason, s.now())
	if err != nil {
		return err
	}
	s.log.Info("lifecycle set", "target", in.Target.String(), "state", in.State, "by", p.Name, "reason", in.Reason)
	return nil
}
