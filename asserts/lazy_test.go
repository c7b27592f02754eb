package asserts

import (
	"context"
	"maps"
	"reflect"
	"testing"
)

// A verdict of Judge tells what its completed form holds without building
// it: its label lookups, comparisons and fingerprint agree with the labels
// and values built, and completed and ordered, Judge's verdicts are
// Evaluate's.
func TestJudgeAsEvaluate(t *testing.T) {
	v := vec(L{"__name__": "m", "instance": "b", "zone": "x"}, 80.0,
		L{"__name__": "m", "instance": "a", "job": "j"}, 20.0,
		L{"__name__": "m", "zone": "y", "instance": "c"}, 50.5,
		L{"__name__": "m"}, 3.0)
	q := fakeQuerier{"m": v}
	for _, src := range []string{
		`asserts: [{name: a, query: {v: m}, expect: v < 50}]`,
		`asserts: [{name: a, query: {v: m}, labels: {team: db, zone: overridden}, expect: v < 50}]`,
		`asserts: [{name: a, query: {v: m}, expect: 'v < 50 || labels.instance == "a"', clear: v < 10}]`,
		`asserts: [{name: a, query: {v: m}, expect: 'v < 50 && $env.v >= 0'}]`,
		`asserts: [{name: a, query: {v: m, w: m}, join: [instance], expect: v < 50}]`,
	} {
		c, errs := compileYAML(t, src)
		if len(errs) > 0 {
			t.Fatal(src, errs)
		}
		ctx := context.Background()
		judged := c.Judge(ctx, q, nil, now)
		want := c.Evaluate(ctx, q, nil, now)
		if len(judged.Verdicts) != len(want.Verdicts) {
			t.Fatalf("%s: Judge gave %d verdicts, Evaluate %d", src, len(judged.Verdicts), len(want.Verdicts))
		}
		for i := range judged.Verdicts {
			j := &judged.Verdicts[i]
			built := *j
			built.Complete()
			ls, vs := built.Labels, built.Values
			if got := string(j.AppendFingerprint(nil)); got != ls.Fingerprint() {
				t.Errorf("%s: fingerprint %s, of the labels built %s", src, got, ls.Fingerprint())
			}
			if !j.SameLabels(maps.Clone(ls)) || j.SameLabels(nil) || j.HasLabels() != (len(ls) > 0) {
				t.Errorf("%s: %v: the labels compare unlike the labels built", src, ls)
			}
			for _, k := range []string{"instance", "zone", "team", "job", "__name__", "nope"} {
				got, ok := j.Label(k)
				if w, wok := ls[k]; got != w || ok != wok {
					t.Errorf("%s: label %s is %q %v, built %q %v", src, k, got, ok, w, wok)
				}
			}
			other := maps.Clone(ls)
			other["instance"] += "x"
			if j.SameLabels(other) {
				t.Errorf("%s: %v is the same as %v", src, ls, other)
			}
			if !j.SameValues(maps.Clone(vs)) || j.SameValues(nil) || j.SameValues(map[string]float64{"v": -1, "w": -1}) {
				t.Errorf("%s: %v: the values compare unlike the values built", src, vs)
			}
			if !reflect.DeepEqual(j.LabelSet(), ls) || !reflect.DeepEqual(j.ValueSet(), vs) || j.Why() != built.Reason {
				t.Errorf("%s: built on first use %v %v %q, completed %v %v %q", src, j.Labels, j.Values, j.Reason, ls, vs, built.Reason)
			}
		}
		for i := range judged.Verdicts {
			judged.Verdicts[i].Complete()
		}
		byLabels := map[string]Verdict{}
		for _, v := range judged.Verdicts {
			byLabels[v.Labels.String()] = v
		}
		for i, w := range want.Verdicts {
			if got := byLabels[w.Labels.String()]; !reflect.DeepEqual(got, w) {
				t.Errorf("%s: verdict %d: Judge completed %+v, Evaluate %+v", src, i, got, w)
			}
		}
	}
	// The vector is the source's: building the labels left it as it was.
	if !reflect.DeepEqual(v, vec(L{"__name__": "m", "instance": "b", "zone": "x"}, 80.0,
		L{"__name__": "m", "instance": "a", "job": "j"}, 20.0, L{"__name__": "m", "zone": "y", "instance": "c"}, 50.5, L{"__name__": "m"}, 3.0)) {
		t.Errorf("the vector changed: %v", v)
	}
}

// An expression that reads the labels is told from one that does not.
func TestReadsLabels(t *testing.T) {
	for src, want := range map[string]bool{
		`v < 50`:                       false,
		`v < 50 && labels.job == "x"`:  true,
		`labels["job"] == "x"`:         true,
		`$env["labels"]["job"] == "x"`: true,
		`"labels" != "x" && v < 1`:     false,
	} {
		c, errs := compileYAML(t, `asserts: [{name: a, query: {v: m}, expect: '`+src+`'}]`)
		if len(errs) > 0 {
			t.Fatal(src, errs)
		}
		if c.readsLabels != want {
			t.Errorf("%s: reads labels %v, want %v", src, c.readsLabels, want)
		}
	}
}
