package sqlstore

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/assertd/assertd"
)

func TestBodyRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 14, 9, 26, 53, 589793000, time.UTC)
	in := assertd.Instance{Labels: assertd.Labels{"instance": "db1", "job": "node", "": "empty name"}, State: assertd.Violated, Since: at,
		Reason: "lag ≥ 10s", Values: map[string]float64{"lag": 12.5, "neg": -0.25, "inf": math.Inf(1), "max": math.MaxFloat64},
		LastEval: at.Add(time.Minute), ClearSince: time.Unix(-1, 0).UTC()}
	var got assertd.Instance
	if err := decBody(&got, encBody(in), &shared{}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, in)
	}
	var empty assertd.Instance
	if err := decBody(&empty, encBody(assertd.Instance{State: "custom"}), nil); err != nil || empty.State != "custom" || !empty.Since.IsZero() || len(empty.Labels) != 0 {
		t.Errorf("empty instance: %+v %v", empty, err)
	}
}

// Every cut of a body, and a body with bytes added, is an error, never a
// panic or a short instance.
func TestBodyMalformed(t *testing.T) {
	b := encBody(assertd.Instance{Labels: assertd.Labels{"a": "b"}, State: assertd.OK, Since: time.Unix(1, 0), Values: map[string]float64{"v": 1}})
	for n := range len(b) {
		var in assertd.Instance
		if err := decBody(&in, b[:n], nil); !errors.Is(err, errBody) {
			t.Errorf("%d of %d bytes: %v", n, len(b), err)
		}
	}
	var in assertd.Instance
	if err := decBody(&in, append(b, 0), nil); !errors.Is(err, errBody) {
		t.Errorf("a byte more: %v", err)
	}
	huge := []byte{bodyVersion, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if err := decBody(&in, huge, nil); !errors.Is(err, errBody) {
		t.Errorf("a length past the end: %v", err)
	}
}

// The instances of one read with the same label set under the same
// fingerprint share its map; another set under that fingerprint does not.
func TestBodySharesLabelSets(t *testing.T) {
	var sh shared
	read := func(l assertd.Labels) assertd.Instance {
		in := assertd.Instance{Fingerprint: "fp"}
		if err := decBody(&in, encBody(assertd.Instance{Labels: l, State: assertd.OK, Reason: "fine"}), &sh); err != nil {
			t.Fatal(err)
		}
		return in
	}
	a, b := read(assertd.Labels{"instance": "db1", "job": "node"}), read(assertd.Labels{"instance": "db1", "job": "node"})
	if reflect.ValueOf(a.Labels).UnsafePointer() != reflect.ValueOf(b.Labels).UnsafePointer() {
		t.Error("two equal label sets under one fingerprint are two maps")
	}
	if unsafe.StringData(a.Reason) != unsafe.StringData(b.Reason) {
		t.Error("two equal reasons are two strings")
	}
	c := read(assertd.Labels{"instance": "db2", "job": "node"})
	if !reflect.DeepEqual(c.Labels, assertd.Labels{"instance": "db2", "job": "node"}) || !reflect.DeepEqual(a.Labels, assertd.Labels{"instance": "db1", "job": "node"}) {
		t.Errorf("another set under the same fingerprint: %v, the first %v", c.Labels, a.Labels)
	}
}
