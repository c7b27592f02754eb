package sqlstore

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/assertd/assertd"
)

// Times are stored as Unix microseconds (UTC); the zero time as NULL.
func tm(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func encLabels(l assertd.Labels) string {
	if len(l) == 0 {
		return "{}"
	}
	b, err := json.Marshal(map[string]string(l))
	if err != nil { // cannot happen for a map of strings
		return "{}"
	}
	return string(b)
}

func decLabels(s string) (assertd.Labels, error) {
	l := assertd.Labels{}
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("stored labels %.40q: %w", s, err)
	}
	return l, nil
}

// encValues writes values as JSON; NaN and ±Inf, which JSON cannot hold,
// are written as the strings "NaN", "+Inf" and "-Inf".
func encValues(v map[string]float64) string {
	if len(v) == 0 {
		return "{}"
	}
	m := make(map[string]any, len(v))
	for k, f := range v {
		switch {
		case math.IsNaN(f):
			m[k] = "NaN"
		case math.IsInf(f, 1):
			m[k] = "+Inf"
		case math.IsInf(f, -1):
			m[k] = "-Inf"
		default:
			m[k] = f
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "{}"
	}
	return string(b)
}

func decValues(s string) (map[string]float64, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("stored values %.40q: %w", s, err)
	}
	v := make(map[string]float64, len(m))
	for k, raw := range m {
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil {
			var str string
			if json.Unmarshal(raw, &str) != nil {
				return nil, fmt.Errorf("stored value %s = %s is not a number", k, raw)
			}
			if f, err = strconv.ParseFloat(str, 64); err != nil {
				return nil, fmt.Errorf("stored value %s = %s is not a number", k, raw)
			}
		}
		v[k] = f
	}
	return v, nil
}

// head keeps at most n bytes from the start of s, cut on a rune boundary.
func head(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// tail keeps at most n bytes from the end of s, cut on a rune boundary.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return s[i:]
}
