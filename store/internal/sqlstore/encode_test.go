package sqlstore

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRebind(t *testing.T) {
	q := `SELECT a FROM t WHERE b = ? AND c IN (?, ?)`
	if got := (Dialect{}).q(q); got != q {
		t.Errorf("sqlite: %s", got)
	}
	if got := (Dialect{Dollar: true}).q(q); got != `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)` {
		t.Errorf("postgres: %s", got)
	}
}

func TestValues(t *testing.T) {
	in := map[string]float64{"a": 1.5, "nan": math.NaN(), "inf": math.Inf(1), "ninf": math.Inf(-1), "max": math.MaxFloat64, "small": math.SmallestNonzeroFloat64}
	out, err := decValues(encValues(in))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range in {
		if got := out[k]; got != v && !(math.IsNaN(v) && math.IsNaN(got)) {
			t.Errorf("%s: %v, want %v", k, got, v)
		}
	}
	if _, err := decValues(`{"a":"x"}`); err == nil {
		t.Error("a non-number decoded")
	}
	if _, err := decValues(`not json`); err == nil {
		t.Error("garbage decoded")
	}
}

func TestTimes(t *testing.T) {
	at := time.Date(2026, 3, 14, 9, 26, 53, 589793999, time.FixedZone("X", -7*3600))
	got := fromMicros(nullInt(tm(at)))
	if !got.Equal(at.Truncate(time.Microsecond)) || got.Location() != time.UTC {
		t.Errorf("%s -> %s", at, got)
	}
	if tm(time.Time{}) != nil || !fromMicros(nullInt(nil)).IsZero() {
		t.Error("the zero time is not NULL")
	}
}

func TestCut(t *testing.T) {
	s := strings.Repeat("é", 10) // 20 bytes
	for n := 0; n <= 21; n++ {
		h, tl := head(s, n), tail(s, n)
		if len(h) > n || len(tl) > n || !utf8.ValidString(h) || !utf8.ValidString(tl) || len(h) < n-1 || len(tl) < min(n, 20)-1 {
			t.Errorf("n=%d: head %q tail %q", n, h, tl)
		}
	}
	if got := clean("a\x00b\xffc"); got != "a\uFFFDb\uFFFDc" {
		t.Errorf("clean: %q", got)
	}
}
