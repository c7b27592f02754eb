package replay

import (
	"context"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/alerts"
	"github.com/assertd/assertd/config"
)

// An assert on the alerts of the rule files has no query of its own, and
// an alerting rule's query returns nothing both when its condition is false
// and when the series it reads are missing. What tells the two apart is the
// series the rules read: each selector of each alerting rule the assert's
// matchers could take alerts from (through the recording rules, to the
// series the source holds) is read over the window as a probe, count(…)
// of it, and a time at which no probe and no alert query of those rules
// returned a sample is a time the assert had no data.

// ruleRead is what says whether an assert's rules had data: the probes of
// their selectors, and their alert queries as the rules send them to the
// source (an alert query that returned a sample had data, whatever the
// probes say: absent(…)).
type ruleRead struct {
	Probes, Alerts []string
}

// ruleReads is, for each assert on the rules' alerts, what says whether
// its rules had data. An assert whose matchers could take no rule's alerts
// has none.
func ruleReads(set *config.Set) map[string]ruleRead {
	type alerting struct {
		known assertd.Labels // alertname, the group's and the rule's labels that are not templates
		expr  parser.Expr
	}
	var rules []alerting
	recorded := map[string][]parser.Expr{}
	for _, f := range set.PromRules {
		for _, g := range f.Groups.Groups {
			for _, r := range g.Rules {
				e, err := config.RuleFileParser.ParseExpr(r.Expr)
				if err != nil {
					continue // config.Load refused it already
				}
				if r.Record != "" {
					recorded[r.Record] = append(recorded[r.Record], e)
					continue
				}
				known := assertd.Labels{"alertname": r.Alert}
				for _, ls := range []map[string]string{g.Labels, r.Labels} {
					for k, v := range ls {
						if strings.Contains(v, "{{") {
							delete(known, k) // a template: any value
						} else {
							known[k] = v
						}
					}
				}
				rules = append(rules, alerting{known: known, expr: e})
			}
		}
	}
	out := map[string]ruleRead{}
	for _, a := range set.Asserts {
		t := a.Trigger
		if t == nil || t.Sender != alerts.SenderRules {
			continue
		}
		var rr ruleRead
		for _, r := range rules {
			if !couldMatch(t.Matchers, r.known) {
				continue
			}
			rr.Alerts = append(rr.Alerts, r.expr.String())
			rr.Probes = append(rr.Probes, probes(r.expr, recorded, map[string]bool{})...)
		}
		if len(rr.Alerts) > 0 {
			slices.Sort(rr.Probes)
			rr.Probes = slices.Compact(rr.Probes)
			out[a.Name] = rr
		}
	}
	return out
}

// couldMatch reports whether an alert carrying the labels known (and any
// others) could satisfy ms: a matcher on a label known must match its value.
func couldMatch(ms []assertd.Matcher, known assertd.Labels) bool {
	for _, m := range ms {
		if _, ok := known[m.Name]; ok && !m.Matches(known) {
			return false
		}
	}
	return true
}

// probes are the queries that read the series e reads: count(selector) for
// an instant selector, count(last_over_time(selector[range])) for a range
// one; a series a recording rule records is read through that rule's own
// selectors, as the source does not hold what the replay records.
func probes(e parser.Expr, recorded map[string][]parser.Expr, seen map[string]bool) []string {
	var out []string
	inRange := map[*parser.VectorSelector]bool{}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.MatrixSelector:
			vs, _ := n.VectorSelector.(*parser.VectorSelector)
			if vs != nil {
				inRange[vs] = true
				if rs, ok := recorded[vs.Name]; ok {
					out = append(out, recordedProbes(vs.Name, rs, recorded, seen)...)
					return nil
				}
			}
			out = append(out, "count(last_over_time("+n.String()+"))")
		case *parser.VectorSelector:
			if inRange[n] {
				return nil
			}
			if rs, ok := recorded[n.Name]; ok {
				out = append(out, recordedProbes(n.Name, rs, recorded, seen)...)
				return nil
			}
			out = append(out, "count("+n.String()+")")
		}
		return nil
	})
	return out
}

func recordedProbes(name string, rs []parser.Expr, recorded map[string][]parser.Expr, seen map[string]bool) []string {
	if seen[name] {
		return nil // recorded from itself: config.Load refuses it, nothing to read
	}
	seen[name] = true
	defer delete(seen, name)
	var out []string
	for _, r := range rs {
		out = append(out, probes(r, recorded, seen)...)
	}
	return out
}

// readRules runs the probes of the asserts on the rules' alerts over the
// whole window on the rules' source, each in the chunks no query of the
// same text read already.
func readRules(ctx context.Context, set *config.Set, hists map[string]*history, reads map[string]ruleRead) {
	h := hists[rulesSource(set)]
	if h == nil {
		return
	}
	var all []string
	for _, rr := range reads {
		all = append(all, rr.Probes...)
	}
	slices.Sort(all)
	for _, q := range slices.Compact(all) {
		h.readAll(ctx, q)
	}
}

// rulesSource is the source the rule files' queries go to.
func rulesSource(set *config.Set) string {
	if s := set.Config.PrometheusRules.Source; s != "" {
		return s
	}
	return config.EmbeddedName
}
