package asserttest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/assertd/assertd"
)

// checkStates compares the instances with a test's states: each listed
// state must be held by an instance carrying its labels (and annotations);
// with exact, no other instance of the named asserts may be other than ok.
func (e *env) checkStates(t Test) []string {
	var fails []string
	insts := e.eng.Instances()
	used := map[string]bool{} // instances an expectation matched, by assert and fingerprint
	for _, s := range t.States {
		var got []string
		matched := false
		for _, in := range insts {
			if in.Assert != s.Assert || !carries(in.Labels, s.Labels) {
				continue
			}
			got = append(got, fmt.Sprintf("%s %s", in.Labels, in.State))
			if string(in.State) != s.State {
				continue
			}
			if len(s.Annotations) > 0 {
				ann := e.eng.Annotations(in)
				if !carries(ann, s.Annotations) {
					got[len(got)-1] += " annotations " + assertd.Labels(ann).String()
					continue
				}
			}
			matched = true
			used[in.Assert+"/"+in.Fingerprint] = true
		}
		if !matched {
			want := s.State
			if len(s.Annotations) > 0 {
				want += " annotations " + assertd.Labels(s.Annotations).String()
			}
			fails = append(fails, fmt.Sprintf("state of %s%s:\n      want: %s\n      got:  %s",
				s.Assert, assertd.Labels(s.Labels), want, orNothing(strings.Join(got, "; "))))
		}
	}
	if !t.Exact {
		return fails
	}
	named := map[string]bool{}
	for _, s := range t.States {
		named[s.Assert] = true
	}
	var extra []string
	for _, in := range insts {
		if named[in.Assert] && in.State != assertd.OK && !used[in.Assert+"/"+in.Fingerprint] {
			extra = append(extra, fmt.Sprintf("%s%s %s", in.Assert, in.Labels, in.State))
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		fails = append(fails, fmt.Sprintf("exactly the states listed:\n      want: nothing else other than ok\n      got:  %s", strings.Join(extra, "; ")))
	}
	return fails
}

// checkAlerts compares the firing instances of each assert named in
// alerts with the expected set, labels and annotations exactly.
func (e *env) checkAlerts(t Test) []string {
	var fails []string
	insts := e.eng.Instances()
	for _, a := range t.Alerts {
		var got, want []string
		for _, in := range insts {
			if in.Assert != a.Assert {
				continue
			}
			switch in.State {
			case assertd.Violated, assertd.Remediating, assertd.Escalated:
			default:
				continue
			}
			got = append(got, alertString(in.Labels, e.eng.Annotations(in)))
		}
		for _, f := range a.Firing {
			want = append(want, alertString(f.Labels, f.Annotations))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			fails = append(fails, fmt.Sprintf("firing instances of %s:\n      want: %s\n      got:  %s", a.Assert,
				orNothing(strings.Join(want, "; ")), orNothing(strings.Join(got, "; "))))
		}
	}
	return fails
}

func alertString(ls, ann map[string]string) string {
	return assertd.Labels(ls).String() + " annotations " + assertd.Labels(ann).String()
}

// checkExprs evaluates the test's expressions at now against the input
// series: the samples returned must be exactly the expected ones.
func (e *env) checkExprs(ctx context.Context, ti int, now time.Time) []string {
	var fails []string
	for j, x := range e.l.file.Tests[ti].Exprs {
		at := assertd.Duration(now.Sub(e.l.origin))
		v, err := e.app.Embedded().Query(ctx, x.Expr, now)
		if err != nil {
			fails = append(fails, fmt.Sprintf("expr %q at %s: %v", x.Expr, at, err))
			continue
		}
		var got, want []string
		for _, s := range v.Samples {
			got = append(got, sampleString(s.Labels, s.Value))
		}
		for k, s := range x.ExpSamples {
			ls := e.l.exprs[[2]int{ti, j}][k]
			want = append(want, sampleString(assertd.Labels(ls.Map()), s.Value))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			fails = append(fails, fmt.Sprintf("expr %q at %s:\n      want: %s\n      got:  %s", x.Expr, at,
				orNothing(strings.Join(want, ", ")), orNothing(strings.Join(got, ", "))))
		}
	}
	return fails
}

// sampleString prints a sample as promtool does ({labels} value), so that
// equal samples print equally.
func sampleString(ls assertd.Labels, v float64) string {
	b := labels.NewBuilder(labels.EmptyLabels())
	for _, k := range slices.Sorted(maps.Keys(ls)) {
		b.Set(k, ls[k])
	}
	return b.Labels().String() + " " + strconv.FormatFloat(v, 'E', -1, 64)
}
