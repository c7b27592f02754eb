package asserts

import (
	"maps"
	"slices"
	"strconv"

	"github.com/assertd/assertd"
)

// raw is an instance's labels and value as the source gave them, before
// they are built into maps: the series' labels (its metric name among them)
// under the assert's labels, and the one query's value. Most instances are
// the same cycle after cycle, so the engine compares them with what it holds
// (SameLabels, SameValues) and builds the maps only for what changed.
type raw struct {
	series, extra  assertd.Labels // the series' labels; the assert's, which win
	name           string         // the query's name
	value          float64        // its value
	labels, values bool           // the labels, the values are not built yet
}

// get is the value of label k of the instance.
func (r *raw) get(k string) (string, bool) {
	if v, ok := r.extra[k]; ok {
		return v, true
	}
	if k == metricName {
		return "", false
	}
	v, ok := r.series[k]
	return v, ok
}

func (r *raw) buildLabels() assertd.Labels {
	ls := make(assertd.Labels, len(r.series)+len(r.extra))
	for k, v := range r.series {
		if k != metricName {
			ls[k] = v
		}
	}
	for k, v := range r.extra {
		ls[k] = v // the assert's labels win, as a rule's do in Prometheus
	}
	return ls
}

// own reports whether label k of the series is the instance's (not its
// metric name, not overridden by the assert).
func (r *raw) own(k string) bool {
	if k == metricName {
		return false
	}
	_, over := r.extra[k]
	return !over
}

func (r *raw) sameLabels(m assertd.Labels) bool {
	if m == nil {
		return false
	}
	n := len(r.extra)
	for k, v := range r.series {
		if !r.own(k) {
			continue
		}
		if w, ok := m[k]; !ok || w != v {
			return false
		}
		n++
	}
	if len(m) != n {
		return false
	}
	for k, v := range r.extra {
		if w, ok := m[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// FNV-1a, 64 bits, as hash/fnv: assertd.Labels.Fingerprint.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

// appendFingerprint appends what assertd.Labels.Fingerprint gives for the
// instance's labels, without building them.
func (r *raw) appendFingerprint(b []byte) []byte {
	var buf [16]string
	names := buf[:0]
	for k := range r.series {
		if r.own(k) {
			names = append(names, k)
		}
	}
	for k := range r.extra {
		names = append(names, k)
	}
	slices.Sort(names)
	h := uint64(fnvOffset)
	for _, k := range names {
		v, _ := r.get(k)
		h = fnvString(h, k)
		h = (h ^ 0xff) * fnvPrime
		h = fnvString(h, v)
		h = (h ^ 0xfe) * fnvPrime
	}
	return strconv.AppendUint(b, h, 16)
}

const metricName = "__name__"

// whyKind says which reason a verdict has until it is formatted.
type whyKind uint8

const (
	whyFormatted whyKind = iota // Reason is set
	whyHolds
	whyViolated
)

// LabelSet returns the instance's labels, building them on first use.
func (v *Verdict) LabelSet() assertd.Labels {
	if v.raw.labels {
		v.Labels, v.raw.labels = v.buildLabels(), false
	}
	return v.Labels
}

// Label returns the value of one of the instance's labels.
func (v *Verdict) Label(name string) (string, bool) {
	if v.raw.labels {
		return v.get(name)
	}
	val, ok := v.Labels[name]
	return val, ok
}

// HasLabels reports whether the instance has any label.
func (v *Verdict) HasLabels() bool {
	if !v.raw.labels {
		return len(v.Labels) > 0
	}
	if len(v.extra) > 0 {
		return true
	}
	for k := range v.series {
		if k != metricName {
			return true
		}
	}
	return false
}

// SameLabels reports whether m (not nil) holds exactly the instance's labels.
func (v *Verdict) SameLabels(m assertd.Labels) bool {
	if v.raw.labels {
		return v.sameLabels(m)
	}
	return m != nil && maps.Equal(m, v.Labels)
}

// AppendFingerprint appends the fingerprint of the instance's labels
// (assertd.Labels.Fingerprint) to b.
func (v *Verdict) AppendFingerprint(b []byte) []byte {
	if v.raw.labels {
		return v.appendFingerprint(b)
	}
	return append(b, v.Labels.Fingerprint()...)
}

// ValueSet returns the instance's values by query name, building them on
// first use.
func (v *Verdict) ValueSet() map[string]float64 {
	if v.raw.values {
		v.Values, v.raw.values = map[string]float64{v.name: v.value}, false
	}
	return v.Values
}

// SameValues reports whether m (not nil) holds exactly the instance's values.
func (v *Verdict) SameValues(m map[string]float64) bool {
	if v.raw.values {
		w, ok := m[v.name]
		return ok && len(m) == 1 && w == v.value
	}
	return m != nil && maps.Equal(m, v.Values)
}

// Why returns the reason of the verdict, formatting it on first use.
func (v *Verdict) Why() string {
	switch v.why {
	case whyHolds:
		v.Reason = "holds: " + v.c.Assert.Expect + v.valuesSuffix()
	case whyViolated:
		v.Reason = "violated: " + v.c.Assert.Expect + " is false" + v.valuesSuffix()
	}
	v.why, v.c = whyFormatted, nil
	return v.Reason
}

func (v *Verdict) valuesSuffix() string {
	if v.raw.values {
		return " with " + v.name + "=" + strconv.FormatFloat(v.value, 'g', 6, 64)
	}
	return valuesSuffix(v.Values)
}

// Complete builds everything a verdict of Judge leaves to first use: its
// labels, values and reason. A completed verdict is what Evaluate returns.
func (v *Verdict) Complete() {
	v.LabelSet()
	v.ValueSet()
	v.Why()
	v.raw = raw{}
}
