package sqlstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/assertd/assertd"
)

// An instance is stored as its key (assert, fingerprint) and a body: one
// binary column holding the rest, so that loading a million instances
// reads three columns a row and parses no JSON. The body is
//
//	version byte (bodyVersion)
//	state, reason              each a uvarint length and its bytes
//	times                      a byte of flags (since, last_eval,
//	                           violated_since, clear_since: bit 0…3 set
//	                           when the time is not zero), then a
//	                           zigzag varint of Unix microseconds for each
//	                           time set
//	labels                     a uvarint count, then name and value of
//	                           each, sorted by name
//	values                     a uvarint count, then name and the 8
//	                           little-endian bytes of the IEEE 754 bits
//	                           of each, sorted by name
//
// Strings are cleaned as in text columns (the reason and state lose NUL
// bytes and invalid UTF-8; label names, values and value names lose
// invalid UTF-8 only, as JSON kept NUL), so that a body reads back the
// same on every database.
const bodyVersion = 1

var errBody = errors.New("stored instance body is malformed")

func encBody(in assertd.Instance) []byte {
	n := 1 + 4 + len(in.State) + len(in.Reason) + 1 + 4*10 + 2
	for k, v := range in.Labels {
		n += 4 + len(k) + len(v)
	}
	for k := range in.Values {
		n += 2 + len(k) + 8
	}
	b := make([]byte, 0, n)
	b = append(b, bodyVersion)
	b = appendString(b, clean(string(in.State)))
	b = appendString(b, clean(in.Reason))
	var flags byte
	times := [4]time.Time{in.Since, in.LastEval, in.ViolatedSince, in.ClearSince}
	for i, t := range times {
		if !t.IsZero() {
			flags |= 1 << i
		}
	}
	b = append(b, flags)
	for _, t := range times {
		if !t.IsZero() {
			b = binary.AppendVarint(b, t.UnixMicro())
		}
	}
	b = binary.AppendUvarint(b, uint64(len(in.Labels)))
	for _, k := range in.Labels.Names() {
		b = appendString(b, strings.ToValidUTF8(k, "\uFFFD"))
		b = appendString(b, strings.ToValidUTF8(in.Labels[k], "\uFFFD"))
	}
	names := make([]string, 0, len(in.Values))
	for k := range in.Values {
		names = append(names, k)
	}
	slices.Sort(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		b = appendString(b, strings.ToValidUTF8(k, "\uFFFD"))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(in.Values[k]))
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decBody fills in from a body; in.Fingerprint is set. With sh, what
// repeats across the instances of one read is shared: strings (label
// names and values, reasons, value names) and label sets (the instances of
// asserts over the same targets: a body whose labels are the bytes of an
// earlier one under the same fingerprint takes that one's map). States
// are the package's constants.
func decBody(in *assertd.Instance, body []byte, sh *shared) error {
	if len(body) == 0 || body[0] != bodyVersion {
		return fmt.Errorf("%w: version %v", errBody, body[:min(len(body), 1)])
	}
	var strs *interner
	if sh != nil {
		strs = &sh.strs
	}
	d := bodyReader{b: body[1:], strs: strs}
	in.State = internState(d.bytes())
	in.Reason = d.str()
	flags := d.byte()
	for i, t := range []*time.Time{&in.Since, &in.LastEval, &in.ViolatedSince, &in.ClearSince} {
		if flags&(1<<i) != 0 {
			*t = time.UnixMicro(d.varint()).UTC()
		} else {
			*t = time.Time{}
		}
	}
	seg := d.b
	end := labelsEnd(seg)
	set, known := sh.set(in.Fingerprint)
	if known && end >= 0 && set.raw == string(seg[:end]) {
		in.Fingerprint, in.Labels = set.fingerprint, set.labels
		d.b = seg[end:]
	} else {
		n := d.count()
		in.Labels = make(assertd.Labels, n)
		for range n {
			k := d.str()
			in.Labels[k] = d.str()
		}
		if !known && end >= 0 {
			sh.keep(labelSet{fingerprint: in.Fingerprint, raw: string(seg[:end]), labels: in.Labels})
		}
	}
	n := d.count()
	in.Values = make(map[string]float64, n)
	for range n {
		k := d.str()
		in.Values[k] = math.Float64frombits(d.uint64())
	}
	if d.bad || len(d.b) != 0 {
		return errBody
	}
	return nil
}

// internState returns the constant of a known state, so that a million
// instances do not hold a million copies of "ok".
func internState(b []byte) assertd.State {
	for _, st := range []assertd.State{assertd.OK, assertd.Pending, assertd.Violated, assertd.Remediating, assertd.Escalated, assertd.Uncertain, assertd.Silenced} {
		if string(st) == string(b) {
			return st
		}
	}
	return assertd.State(b)
}

// labelsEnd is the length of the labels at the start of b, or -1 when
// they are malformed.
func labelsEnd(b []byte) int {
	d := bodyReader{b: b}
	for range 2 * d.count() {
		d.bytes()
	}
	if d.bad {
		return -1
	}
	return len(b) - len(d.b)
}

// shared is what the instances of one read share: strings and label sets.
// The zero value is ready; a nil one shares nothing.
type shared struct {
	strs interner
	sets map[string]labelSet // by fingerprint: the first set read under it
}

// labelSet is a label set as read: its fingerprint, its bytes in the
// body, its map.
type labelSet struct {
	fingerprint, raw string
	labels           assertd.Labels
}

func (sh *shared) set(fp string) (labelSet, bool) {
	if sh == nil {
		return labelSet{}, false
	}
	l, ok := sh.sets[fp]
	return l, ok
}

// keep remembers a label set, up to maxInterned of them.
func (sh *shared) keep(l labelSet) {
	if sh == nil {
		return
	}
	if sh.sets == nil {
		sh.sets = map[string]labelSet{}
	}
	if len(sh.sets) < maxInterned {
		sh.sets[l.fingerprint] = l
	}
}

// interner hands out one copy of each string it has seen, up to
// maxInterned strings (then new ones are copied each time). The zero value
// is ready; a nil interner copies every string.
type interner struct {
	m map[string]string
}

const maxInterned = 1 << 16

func (s *interner) str(b []byte) string {
	if s == nil {
		return string(b)
	}
	if v, ok := s.m[string(b)]; ok {
		return v
	}
	v := string(b)
	if s.m == nil {
		s.m = map[string]string{}
	}
	if len(s.m) < maxInterned {
		s.m[v] = v
	}
	return v
}

// bodyReader reads a body; a read past its end sets bad and returns zeros.
type bodyReader struct {
	b    []byte
	strs *interner
	bad  bool
}

func (d *bodyReader) fail() {
	d.bad, d.b = true, nil
}

func (d *bodyReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *bodyReader) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// count is a count of entries, each at least two bytes long.
func (d *bodyReader) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)/2) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *bodyReader) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *bodyReader) str() string { return d.strs.str(d.bytes()) }

func (d *bodyReader) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *bodyReader) uint64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}
