package web_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/assertd/assertd"
)

// A restart finds every instance in the state it had, from the store alone.
func TestRestartFindsTheInstances(t *testing.T) {
	e := newEnv(t)
	e.seed()
	key := func(ins []assertd.Instance) []string {
		var out []string
		for _, in := range ins {
			out = append(out, in.Assert+" "+in.Fingerprint+" "+string(in.State))
		}
		slices.Sort(out)
		return out
	}
	before := key(e.eng.Instances())
	if len(before) < 5 || !slices.ContainsFunc(before, func(s string) bool { return strings.HasSuffix(s, " escalated") }) {
		t.Fatalf("the seed made %v", before)
	}
	if after := key(e.restart().Engine().Instances()); !slices.Equal(after, before) {
		t.Fatalf("after a restart:\n%v\nbefore:\n%v", after, before)
	}
}
