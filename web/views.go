package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/store"
)

// This file gathers what the API and the pages both show.

// States lists the instance states worst first.
var States = []assertd.State{assertd.Escalated, assertd.Remediating, assertd.Violated, assertd.Uncertain,
	assertd.Pending, assertd.Silenced, assertd.OK}

// problem reports whether an instance needs a look: anything but ok and
// pending, unless a silence covers it.
func problem(in assertd.Instance) bool {
	switch in.State {
	case assertd.OK, assertd.Pending, assertd.Silenced:
		return false
	}
	return in.Silenced == ""
}

// instanceFilter selects instances: by states, assert and label matchers.
type instanceFilter struct {
	States   []assertd.State
	Assert   string
	Matchers []assertd.Matcher
	Match    string              // as written
	matchers *assertd.MatcherSet // Matchers compiled once for every instance
}

// parseInstanceFilter reads state=a,b&assert=x&match={…} from a query.
func parseInstanceFilter(q url.Values) (instanceFilter, error) {
	f := instanceFilter{Assert: strings.TrimSpace(q.Get("assert")), Match: strings.TrimSpace(q.Get("match"))}
	for _, v := range q["state"] {
		for p := range strings.SplitSeq(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			st := assertd.State(p)
			if !slices.Contains(States, st) {
				return f, fieldErr("state", "unknown state %q: the states are %s", p, stateList())
			}
			f.States = append(f.States, st)
		}
	}
	if f.Match != "" {
		ms, err := ParseMatchers(f.Match)
		if err != nil {
			return f, fieldErr("match", "%v", err)
		}
		f.Matchers, f.matchers = ms, assertd.NewMatcherSet(ms)
	}
	return f, nil
}

func stateList() string {
	parts := make([]string, len(States))
	for i, s := range States {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

func (f instanceFilter) keep(in assertd.Instance) bool {
	if len(f.States) > 0 && !slices.Contains(f.States, in.State) {
		return false
	}
	if f.Assert != "" && in.Assert != f.Assert {
		return false
	}
	return f.matchers == nil || f.matchers.Matches(in.Labels)
}

func (f instanceFilter) Empty() bool {
	return len(f.States) == 0 && f.Assert == "" && len(f.Matchers) == 0
}

// counts counts instances by state.
func counts(ins []assertd.Instance) map[assertd.State]int {
	c := map[assertd.State]int{}
	for _, in := range ins {
		c[in.State]++
	}
	return c
}

func problems(ins []assertd.Instance) int {
	n := 0
	for _, in := range ins {
		if problem(in) {
			n++
		}
	}
	return n
}

// assertView is an assert's definition as the API shows it.
type assertView struct {
	Name         string                `json:"name"`
	Description  string                `json:"description,omitempty"`
	Position     string                `json:"position"` // file:line:col of its definition
	File         string                `json:"file"`
	Line         int                   `json:"line"`
	Source       string                `json:"source"`
	Every        string                `json:"every,omitempty"`
	Schedule     string                `json:"schedule,omitempty"`
	For          string                `json:"for,omitempty"`
	ClearFor     string                `json:"clear_for,omitempty"`
	Queries      map[string]string     `json:"queries,omitempty"`
	Expect       string                `json:"expect"`
	Clear        string                `json:"clear,omitempty"`
	NoData       string                `json:"no_data"`
	UncertainFor string                `json:"uncertain_for,omitempty"`
	Remediate    string                `json:"remediate,omitempty"`
	Escalate     string                `json:"escalate,omitempty"`
	Labels       map[string]string     `json:"labels,omitempty"`
	Annotations  map[string]string     `json:"annotations,omitempty"`
	Counts       map[assertd.State]int `json:"counts"`
}

func durStr(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return assertd.Duration(d).String()
}

// relPath writes a file path relative to the config's directory.
func relPath(set *config.Set, p string) string {
	if set != nil && set.ConfigPath != "" {
		if r, err := filepath.Rel(filepath.Dir(set.ConfigPath), p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return p
}

func viewAssert(set *config.Set, a *asserts.Compiled, ins []assertd.Instance) assertView {
	v := assertView{Name: a.Name, Description: a.Description, File: relPath(set, a.Pos.File), Line: a.Pos.Line,
		Source: set.SourceName(a), Every: durStr(a.Every), Schedule: a.Assert.Schedule.String(), For: durStr(a.For.Std()),
		ClearFor: durStr(a.ClearFor.Std()), Expect: a.Assert.Expect, Clear: a.Assert.Clear, NoData: string(a.NoData),
		UncertainFor: durStr(a.UncertainFor), Remediate: a.Remediate, Escalate: a.Escalate, Labels: a.Labels,
		Annotations: a.Assert.Annotations, Counts: map[assertd.State]int{}}
	v.Position = fmt.Sprintf("%s:%d:%d", v.File, a.Pos.Line, a.Pos.Col)
	if len(a.Queries) > 0 {
		v.Queries = map[string]string{}
		for _, q := range a.Queries {
			v.Queries[q.Name] = q.Text
		}
	}
	for _, in := range ins {
		if in.Assert == a.Name {
			v.Counts[in.State]++
		}
	}
	return v
}

// instanceDetail is one instance with its history.
type instanceDetail struct {
	Instance    assertd.Instance     `json:"instance"`
	Transitions []assertd.Transition `json:"transitions"`
	Decisions   []assertd.Decision   `json:"decisions"`
	Runs        []assertd.Run        `json:"runs"`
	Messages    []assertd.Message    `json:"messages"`
}

// findInstance returns an instance from the engine's snapshot, or the store.
func (s *server) findInstance(ctx context.Context, assert, fp string) (assertd.Instance, error) {
	for _, in := range s.d.Engine.Instances() {
		if in.Assert == assert && in.Fingerprint == fp {
			return in, nil
		}
	}
	in, err := s.d.Store.Instance(ctx, assert, fp)
	if err != nil {
		return in, fmt.Errorf("instance %s/%s: %w", assert, fp, err)
	}
	return in, nil
}

func (s *server) instanceDetail(ctx context.Context, assert, fp string) (instanceDetail, error) {
	var d instanceDetail
	in, err := s.findInstance(ctx, assert, fp)
	if err != nil {
		return d, err
	}
	d.Instance = in
	if d.Transitions, err = s.d.Store.Transitions(ctx, store.TransitionFilter{Assert: assert, Fingerprint: fp, Limit: 200}); err != nil {
		return d, err
	}
	if d.Decisions, err = s.d.Store.Decisions(ctx, store.DecisionFilter{Assert: assert, Fingerprint: fp, Limit: 100}); err != nil {
		return d, err
	}
	if d.Runs, err = s.d.Store.Runs(ctx, store.RunFilter{Assert: assert, Fingerprint: fp, Limit: 50}); err != nil {
		return d, err
	}
	d.Messages, err = s.d.Store.Messages(ctx, store.MessageFilter{DedupKey: assert + "/" + fp, Limit: 100})
	return d, err
}

// runDetail is one run with its steps and approval.
type runDetail struct {
	Run      assertd.Run       `json:"run"`
	Steps    []assertd.RunStep `json:"steps"`
	Approval *assertd.Approval `json:"approval,omitempty"`
}

func (s *server) runDetail(ctx context.Context, id string) (runDetail, error) {
	var d runDetail
	var err error
	if d.Run, err = s.d.Store.Run(ctx, id); err != nil {
		return d, err
	}
	if d.Steps, err = s.d.Store.Steps(ctx, id); err != nil {
		return d, err
	}
	if a, err := s.d.Store.Approval(ctx, id); err == nil {
		d.Approval = &a
	}
	return d, nil
}

// heartbeatView is a heartbeat's state, next deadline and recent pings.
type heartbeatView struct {
	Name         string                  `json:"name"`
	Status       asserts.HeartbeatStatus `json:"status"`
	NextDeadline time.Time               `json:"next_deadline,omitzero"`
	Record       assertd.HeartbeatRecord `json:"record"`
	Pings        []assertd.Ping          `json:"pings"`
}

func (s *server) heartbeats(ctx context.Context, pings int) ([]heartbeatView, error) {
	if s.d.Heartbeats == nil {
		return nil, nil
	}
	now := s.now()
	var out []heartbeatView
	for _, name := range s.d.Heartbeats.Names() {
		v := heartbeatView{Name: name}
		v.Status, _ = s.d.Heartbeats.Status(name, now)
		v.NextDeadline, _ = s.d.Heartbeats.NextDeadline(name, now)
		if rec, err := s.d.Store.Heartbeat(ctx, name); err == nil {
			v.Record = rec
		}
		ps, err := s.d.Store.Pings(ctx, name, pings)
		if err != nil {
			return nil, err
		}
		v.Pings = ps
		out = append(out, v)
	}
	return out, nil
}

// settingView is a runtime setting: what is stored and what is in force.
type settingView struct {
	Key       string    `json:"key"`
	Value     string    `json:"value"`            // in force
	Default   string    `json:"default"`          // from the config ("" none)
	Stored    bool      `json:"stored"`           // changed at run time
	Updated   time.Time `json:"updated,omitzero"` // when stored
	By        string    `json:"by,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Describes string    `json:"describes"`
}

func (s *server) settings(ctx context.Context) ([]settingView, error) {
	set := s.d.Engine.Config()
	var safety config.Safety
	if set != nil && set.Config != nil {
		safety = set.Config.Safety
	}
	kill, maxRuns, budget := "off", "4", ""
	if safety.KillSwitch {
		kill = "on"
	}
	if safety.MaxConcurrentRuns > 0 {
		maxRuns = fmt.Sprint(safety.MaxConcurrentRuns)
	}
	if safety.RunBudget != nil {
		budget = fmt.Sprintf("%d/%s", safety.RunBudget.Count, safety.RunBudget.Within)
	}
	out := []settingView{
		{Key: assertd.SettingKillSwitch, Default: kill, Describes: "on stops every automated action; violations are paged"},
		{Key: assertd.SettingMaxConcurrentRuns, Default: maxRuns, Describes: "remediation runs at once, across all remediations"},
		{Key: assertd.SettingRunBudget, Default: budget, Describes: "runs allowed per window across all remediations, such as 20/1h"},
	}
	if set != nil {
		for _, r := range set.Remediations {
			def := ""
			if r.MaxRuns != nil {
				def = fmt.Sprintf("%d/%s", r.MaxRuns.Count, r.MaxRuns.Within)
			}
			out = append(out, settingView{Key: assertd.SettingRatePrefix + r.Name, Default: def, Describes: "runs of " + r.Name + " per lock key per window (max_runs)"})
		}
	}
	stored, err := s.d.Store.Settings(ctx)
	if err != nil {
		return nil, err
	}
	for _, st := range stored {
		i := slices.IndexFunc(out, func(v settingView) bool { return v.Key == st.Key })
		if i < 0 {
			out = append(out, settingView{Key: st.Key, Describes: "(not in the config)"})
			i = len(out) - 1
		}
		out[i].Value, out[i].Stored, out[i].Updated, out[i].By, out[i].Reason = st.Value, true, st.Updated, st.By, st.Reason
	}
	for i := range out {
		if !out[i].Stored {
			out[i].Value = out[i].Default
		}
	}
	return out, nil
}

// killSwitch reports whether automation is stopped.
func (s *server) killSwitch(ctx context.Context) bool {
	vs, err := s.settings(ctx)
	if err != nil {
		return false
	}
	return vs[0].Value == "on"
}

// configHash identifies the loaded configuration files (their contents),
// computed once per loaded configuration.
type configHasher struct {
	mu   sync.Mutex
	set  *config.Set
	hash string
}

func (h *configHasher) of(set *config.Set) string {
	if set == nil {
		return ""
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.set == set {
		return h.hash
	}
	sum := sha256.New()
	for _, f := range append([]string{set.ConfigPath}, set.Files...) {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fmt.Fprintf(sum, "%s\x00%d\x00", filepath.Base(f), len(b))
		sum.Write(b)
	}
	h.set, h.hash = set, hex.EncodeToString(sum.Sum(nil))[:16]
	return h.hash
}

var hasher configHasher

// statusView is the engine's overall state.
type statusView struct {
	Counts     map[assertd.State]int `json:"counts"`
	Problems   int                   `json:"problems"`
	Instances  int                   `json:"instances"`
	Held       int                   `json:"held_changes"`
	KillSwitch bool                  `json:"kill_switch"`
	Reload     reloadView            `json:"reload"`
	Asserts    int                   `json:"asserts"`
}

type reloadView struct {
	At         time.Time `json:"at,omitzero"`
	OK         bool      `json:"ok"`
	Error      string    `json:"error,omitempty"`
	ConfigHash string    `json:"config_hash"`
}

func (s *server) status(ctx context.Context) statusView {
	ins := s.d.Engine.Instances()
	rs := s.d.Engine.LastReload()
	set := s.d.Engine.Config()
	v := statusView{Counts: counts(ins), Problems: problems(ins), Instances: len(ins), Held: s.d.Engine.Held(),
		KillSwitch: s.killSwitch(ctx), Reload: reloadView{At: rs.At, OK: rs.Err == nil, ConfigHash: hasher.of(set)}}
	if rs.Err != nil {
		v.Reload.Error = rs.Err.Error()
	}
	if set != nil {
		v.Asserts = len(set.Asserts)
	}
	return v
}
