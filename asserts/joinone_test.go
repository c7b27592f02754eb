package asserts

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/assertd/assertd"
)

// The single-query path of join gives what the keyed join gives, and leaves
// the vector it reads as it was (a tick shares it between asserts).
func TestJoinOneAsKeyed(t *testing.T) {
	c, errs := compileYAML(t, `asserts: [{name: a, query: {v: m}, labels: {team: db, zone: overridden}, expect: v < 50}]`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for name, v := range map[string]assertd.Vector{
		"one name":   vec(L{"__name__": "m", "instance": "a"}, 1.0, L{"__name__": "m", "instance": "b", "zone": "x"}, 2.0, L{"__name__": "m"}, 3.0),
		"no name":    vec(L{"instance": "a"}, 1.0, L{"instance": "b"}, 2.0),
		"many names": vec(L{"__name__": "m", "instance": "a"}, 1.0, L{"__name__": "n", "instance": "a"}, 2.0),
		"mixed":      vec(L{"__name__": "m", "instance": "a"}, 1.0, L{"instance": "a"}, 2.0),
		"single":     vec(L{"__name__": "m"}, 1.0),
		"empty":      {},
	} {
		before := clone(v)
		res := map[string]assertd.Vector{"v": v}
		fast := c.joinOne(res)
		want := c.joinKeyed(res)
		switch name {
		case "many names", "mixed", "single", "empty":
			if fast != nil {
				t.Errorf("%s: the single-query path took a case it cannot tell apart", name)
			}
		default:
			if got := built(fast); !reflect.DeepEqual(got, deref(want)) {
				t.Errorf("%s: single-query path %v, keyed join %v", name, got, deref(want))
			}
		}
		if !reflect.DeepEqual(v, before) {
			t.Errorf("%s: the vector changed: %v, was %v", name, v, before)
		}
	}
}

func clone(v assertd.Vector) assertd.Vector {
	out := v
	out.Samples = nil
	for _, s := range v.Samples {
		ls := assertd.Labels{}
		for k, x := range s.Labels {
			ls[k] = x
		}
		out.Samples = append(out.Samples, assertd.Sample{Labels: ls, Value: s.Value})
	}
	return out
}

// built is js with the labels and values of the single-query path built.
func built(js []*joined) []joined {
	var out []joined
	for _, j := range js {
		b := *j
		if b.raw.labels {
			b.labels = b.buildLabels()
		}
		if b.raw.values {
			b.values = map[string]float64{b.name: b.value}
		}
		b.raw = raw{}
		out = append(out, b)
	}
	return out
}

func deref(js []*joined) []joined {
	var out []joined
	for _, j := range js {
		out = append(out, *j)
	}
	return out
}

// BenchmarkJoin: one query of ten series, as most asserts are, by the
// single-query path and by the keyed join.
func BenchmarkJoin(b *testing.B) {
	c, errs := compileYAML(&testing.T{}, `asserts: [{name: a, query: {v: m}, expect: v < 50}]`)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	var v assertd.Vector
	for i := range 10 {
		v.Samples = append(v.Samples, assertd.Sample{Labels: L{"__name__": "m", "instance": fmt.Sprintf("host-%02d", i), "job": "bench"}, Value: 20})
	}
	res := map[string]assertd.Vector{"v": v}
	b.Run("single-query", func(b *testing.B) {
		for b.Loop() {
			c.joinOne(res)
		}
	})
	b.Run("keyed", func(b *testing.B) {
		for b.Loop() {
			c.joinKeyed(res)
		}
	})
	b.Run("evaluate", func(b *testing.B) {
		q := fakeQuerier{"m": v}
		for b.Loop() {
			c.Evaluate(context.Background(), q, nil, now)
		}
	})
}
