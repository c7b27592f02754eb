package asserts

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/assertd/assertd"
)

// Querier answers instant queries; the sources implement it.
type Querier interface {
	Query(ctx context.Context, q string, ts time.Time) (assertd.Vector, error)
}

// HeartbeatFunc returns a heartbeat's status at the evaluation time. An error
// means its state cannot be trusted (it stopped: "if we have no heartbeat we
// don't know health"); the instance is then uncertain, with the error as the
// reason.
type HeartbeatFunc func(name string) (HeartbeatStatus, error)

// Verdict is the outcome of one instance at one evaluation.
type Verdict struct {
	Labels assertd.Labels     `json:"labels"`
	Values map[string]float64 `json:"values"`
	State  assertd.State      `json:"state"` // ok, violated or uncertain
	Reason string             `json:"reason"`
	// Clear says whether clear (or expect, when there is no clear) holds:
	// the state machine uses it for hysteresis.
	Clear bool `json:"clear"`
	// Annotations and GeneratorURL are the alert's, for an
	// alert-triggered assert.
	Annotations  map[string]string `json:"annotations,omitempty"`
	GeneratorURL string            `json:"generator_url,omitempty"`

	// A verdict of Judge keeps its labels and values as the source gave
	// them, and its reason unformatted, until they are used (lazy.go).
	raw
	c   *Compiled
	why whyKind
}

// Evaluation is the outcome of one evaluation of an assert.
type Evaluation struct {
	At       time.Time `json:"at"`
	Verdicts []Verdict `json:"verdicts"`
	// SourceErr is set when a query failed: the source is unavailable
	// (errors.Is assertd.ErrSourceUnavailable) or the query is bad. Every
	// instance known from earlier evaluations is then uncertain; Verdicts is
	// empty.
	SourceErr error `json:"-"`
}

// Evaluate runs the queries at now, joins their results into instances by
// the join rule (docs/ASSERTS.md) and evaluates expect and clear for each;
// the verdicts are complete and ordered by their labels.
func (c *Compiled) Evaluate(ctx context.Context, q Querier, hb HeartbeatFunc, now time.Time) Evaluation {
	if c.Trigger != nil {
		return c.evaluateTrigger(q, now)
	}
	ev := c.Judge(ctx, q, hb, now)
	type keyed struct {
		key string
		v   Verdict
	}
	out := make([]keyed, len(ev.Verdicts))
	for i := range ev.Verdicts {
		v := &ev.Verdicts[i]
		v.Complete()
		out[i] = keyed{v.Labels.String(), *v}
	}
	slices.SortFunc(out, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	for i := range out {
		ev.Verdicts[i] = out[i].v
	}
	return ev
}

// Judge is Evaluate for a caller that holds the instances of the last
// evaluation: the verdicts come in the order the source answered, and an
// instance's labels, values and reason are built on first use (LabelSet,
// ValueSet, Why; SameLabels and SameValues compare them with what the
// caller holds without building them). Until then, Labels, Values and
// Reason may be empty: Complete fills them.
func (c *Compiled) Judge(ctx context.Context, q Querier, hb HeartbeatFunc, now time.Time) Evaluation {
	if c.Trigger != nil {
		return c.evaluateTrigger(q, now)
	}
	ev := Evaluation{At: now}
	results := make(map[string]assertd.Vector, len(c.Queries))
	for _, qu := range c.Queries {
		v, err := q.Query(ctx, qu.Text, now)
		if err != nil {
			ev.SourceErr = fmt.Errorf("query %s: %w", qu.Name, err)
			return ev
		}
		results[qu.Name] = v
	}
	joined := c.join(results)
	j := newJudgement(hb, now)
	defer j.release()
	ev.Verdicts = make([]Verdict, len(joined))
	for i, in := range joined {
		ev.Verdicts[i] = c.judge(in, j)
	}
	return ev
}

// baseEnv is what the environment of every evaluation starts from.
var baseEnv = Env(nil)

// judgements are reused from one evaluation to the next.
var judgements = sync.Pool{New: func() any {
	j := &judgement{env: map[string]any{}}
	j.heartbeatFn = j.heartbeat
	return j
}}

// newJudgement returns one environment for every instance of an
// evaluation at now: judge overwrites what differs between them.
func newJudgement(hb HeartbeatFunc, now time.Time) *judgement {
	j := judgements.Get().(*judgement)
	maps.Copy(j.env, baseEnv)
	j.env[EnvNow] = now
	j.env[EnvHeartbeat] = j.heartbeatFn
	j.hb, j.hbErr = hb, nil
	return j
}

func (j *judgement) release() {
	clear(j.env)
	j.hb, j.hbErr = nil, nil
	judgements.Put(j)
}

// judgement is the expression environment shared by the instances of one
// evaluation, and the heartbeat errors of the instance being judged.
type judgement struct {
	env   map[string]any
	hb    HeartbeatFunc
	hbErr error
	vm    vm.VM // one machine for every run of the evaluation
	// heartbeatFn is heartbeat, made once for every evaluation.
	heartbeatFn func(string) HeartbeatStatus
}

func (j *judgement) heartbeat(name string) HeartbeatStatus {
	if j.hb == nil {
		j.hbErr = errors.Join(j.hbErr, fmt.Errorf("heartbeat %s: no heartbeat state here", name))
		return HeartbeatStatus{Name: name}
	}
	st, err := j.hb(name)
	if err != nil {
		j.hbErr = errors.Join(j.hbErr, err)
	}
	return st
}

type joined struct {
	labels  assertd.Labels
	values  map[string]float64
	raw              // joinOne: the labels and value as the source gave them
	dupes   []string // queries that returned several series for this key
	missing []string // queries without a value for this instance
	noData  bool     // every query returned nothing
}

// join applies the join rule.
func (c *Compiled) join(results map[string]assertd.Vector) []*joined {
	if out := c.joinOne(results); out != nil {
		return out
	}
	return c.joinKeyed(results)
}

// joinKeyed is join by label-set keys, for every case.
func (c *Compiled) joinKeyed(results map[string]assertd.Vector) []*joined {
	globals := map[string]float64{}
	byKey := map[string]*joined{}
	var order []string
	empty := true
	for _, q := range c.Queries {
		v := results[q.Name]
		if len(v.Samples) > 0 {
			empty = false
		}
		if v.Scalar || (len(v.Samples) == 1 && len(withoutName(v.Samples[0].Labels)) == 0) {
			if len(v.Samples) == 1 {
				globals[q.Name] = v.Samples[0].Value
			}
			continue
		}
		seen := map[string]bool{}
		for _, s := range v.Samples {
			ls := withoutName(s.Labels)
			key := ls
			if len(c.Join) > 0 {
				key = assertd.Labels{}
				for _, l := range c.Join {
					if val, ok := ls[l]; ok {
						key[l] = val
					}
				}
			}
			fp := key.Fingerprint()
			in := byKey[fp]
			if in == nil {
				in = &joined{labels: assertd.Labels{}, values: map[string]float64{}}
				byKey[fp] = in
				order = append(order, fp)
			}
			for k, val := range ls {
				if _, taken := in.labels[k]; !taken {
					in.labels[k] = val // the first query by name wins
				}
			}
			if seen[fp] {
				if !slices.Contains(in.dupes, q.Name) {
					in.dupes = append(in.dupes, q.Name)
				}
				continue
			}
			seen[fp] = true
			in.values[q.Name] = s.Value
		}
	}
	var out []*joined
	for _, fp := range order {
		out = append(out, byKey[fp])
	}
	if len(out) == 0 {
		// No keyed series: one instance, carrying the globals (or no data).
		out = []*joined{{labels: assertd.Labels{}, values: map[string]float64{}, noData: empty && len(c.Queries) > 0}}
	}
	for _, in := range out {
		for k, v := range globals {
			in.values[k] = v
		}
		for k, v := range c.Assert.Labels {
			in.labels[k] = v // the assert's labels win, as a rule's do in Prometheus
		}
		for _, q := range c.Queries {
			if _, ok := in.values[q.Name]; !ok && !in.noData {
				in.missing = append(in.missing, q.Name)
			}
		}
	}
	return out
}

// joinOne is join for the common case it can do without keying: one query
// and no join labels, answered by a vector whose series all have the same
// metric name (or none), so no two of them share a label set once the name
// is dropped. Each series is one instance, in the vector's order; nil when
// the case does not apply.
func (c *Compiled) joinOne(results map[string]assertd.Vector) []*joined {
	if len(c.Queries) != 1 || len(c.Join) > 0 {
		return nil
	}
	name := c.Queries[0].Name
	v := results[name]
	if v.Scalar || len(v.Samples) < 2 {
		return nil // a scalar, a single series or none: join's rules for globals and no data
	}
	metric, named := v.Samples[0].Labels["__name__"]
	for _, s := range v.Samples[1:] {
		if m, ok := s.Labels["__name__"]; ok != named || m != metric {
			return nil
		}
	}
	out := make([]*joined, len(v.Samples))
	all := make([]joined, len(v.Samples))
	for i, s := range v.Samples {
		// The series' labels stay the source's: the vector may be shared
		// with other asserts of the same tick, and the assert's labels go
		// over them when the labels are built (raw).
		all[i] = joined{raw: raw{series: s.Labels, extra: c.Assert.Labels, name: name, value: s.Value, labels: true, values: true}}
		out[i] = &all[i]
	}
	return out
}

func withoutName(ls assertd.Labels) assertd.Labels {
	if _, ok := ls["__name__"]; !ok {
		return ls
	}
	out := make(assertd.Labels, len(ls)-1)
	for k, v := range ls {
		if k != "__name__" {
			out[k] = v
		}
	}
	return out
}

func (c *Compiled) noDataState() assertd.State {
	switch c.NoData {
	case NoDataOK:
		return assertd.OK
	case NoDataViolated:
		return assertd.Violated
	}
	return assertd.Uncertain
}

// judge evaluates one joined instance.
func (c *Compiled) judge(in *joined, j *judgement) Verdict {
	v := Verdict{Labels: in.labels, Values: in.values, raw: in.raw}
	switch {
	case len(in.dupes) > 0:
		v.State = assertd.Uncertain
		v.Reason = fmt.Sprintf("query %s returned several series for this instance; aggregate them (sum by (…)) or add the labels that tell them apart to join", strings.Join(in.dupes, ", "))
		return v
	case in.noData:
		v.State, v.Clear = c.noDataState(), c.noDataState() == assertd.OK
		v.Reason = fmt.Sprintf("no data: the queries returned nothing (no_data: %s)", c.NoData)
		return v
	case len(in.missing) > 0:
		v.State, v.Clear = c.noDataState(), c.noDataState() == assertd.OK
		v.Reason = fmt.Sprintf("partial data: no value for %s (no_data: %s)", strings.Join(in.missing, ", "), c.NoData)
		return v
	}
	env := j.env
	if v.raw.values {
		env[v.name] = v.value
	} else {
		for k, val := range v.Values {
			env[k] = val
		}
	}
	if c.readsLabels {
		env[EnvLabels] = map[string]string(v.LabelSet())
	}
	j.hbErr = nil
	holds, err := j.run(c.Expect)
	switch {
	case j.hbErr != nil:
		v.State, v.Reason = assertd.Uncertain, "cannot tell: "+j.hbErr.Error()
		return v
	case err != nil:
		v.State, v.Reason = assertd.Uncertain, "expect failed: "+err.Error()
		return v
	}
	v.Clear = holds
	if c.Clear != nil {
		if v.Clear, err = j.run(c.Clear); err != nil {
			v.Clear = false
		}
	}
	v.c = c
	if holds {
		v.State, v.why = assertd.OK, whyHolds
	} else {
		v.State, v.why = assertd.Violated, whyViolated
	}
	return v
}

func (j *judgement) run(p *vm.Program) (bool, error) {
	out, err := j.vm.Run(p, j.env)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

// valuesSuffix writes " with p99_ms=61.2, rate=3".
func valuesSuffix(values map[string]float64) string {
	if len(values) == 0 {
		return ""
	}
	var parts []string
	for _, k := range sortedKeys(values) {
		parts = append(parts, k+"="+strconv.FormatFloat(values[k], 'g', 6, 64))
	}
	return " with " + strings.Join(parts, ", ")
}
