package web

import (
	"cmp"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/assertd/assertd"
)

// This file: the inline SVG timeline of an instance's states and values,
// and an expression with its current values resolved in place.

// timelineSpan is how far back a timeline looks at most.
const timelineSpan = 24 * time.Hour

type segment struct {
	from, to time.Time
	state    assertd.State
	reason   string
}

// segments turns transitions (newest first, as the store returns them) into
// the states over [start, now].
func segments(in assertd.Instance, trs []assertd.Transition, start, now time.Time) []segment {
	asc := ascending(trs)
	var out []segment
	cur, curFrom, reason := in.State, start, in.Reason
	if len(asc) > 0 {
		cur, reason = asc[0].From, ""
	}
	for _, t := range asc {
		if t.At.Before(start) {
			cur, reason = t.To, t.Reason
			continue
		}
		if t.At.After(curFrom) {
			out = append(out, segment{from: curFrom, to: t.At, state: cur, reason: reason})
		}
		cur, curFrom, reason = t.To, t.At, t.Reason
	}
	if now.After(curFrom) {
		out = append(out, segment{from: curFrom, to: now, state: cur, reason: reason})
	}
	return out
}

// ascending orders transitions oldest first; those at the same time in the
// order they were recorded.
func ascending(trs []assertd.Transition) []assertd.Transition {
	asc := slices.Clone(trs)
	slices.SortStableFunc(asc, func(a, b assertd.Transition) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return asc
}

// timeline draws an instance's states over time as a band, and under it
// each value (at each transition and now) as a line scaled to its range.
func timeline(in assertd.Instance, trs []assertd.Transition, now time.Time, width int, values bool) template.HTML {
	start := in.Since
	for _, t := range trs {
		if t.At.Before(start) {
			start = t.At
		}
	}
	// Show a little of the state before the first known change.
	start = start.Add(-max(now.Sub(start)/8, time.Minute))
	if start.IsZero() || start.Before(now.Add(-timelineSpan)) {
		start = now.Add(-timelineSpan)
	}
	if now.Sub(start) < 5*time.Minute {
		start = now.Add(-5 * time.Minute)
	}
	span := now.Sub(start).Seconds()
	x := func(t time.Time) float64 {
		if t.Before(start) {
			t = start
		}
		return math.Round(float64(width)*t.Sub(start).Seconds()/span*10) / 10
	}
	const bar = 18
	names := sortedKeys(in.Values)
	if !values || len(names) == 0 {
		names = nil
	}
	if len(names) > 3 {
		names = names[:3]
	}
	const band = 40
	height := bar + 16 + len(names)*(band+6)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="timeline" viewBox="0 0 %d %d" preserveAspectRatio="none" role="img" aria-label="%s">`,
		width, height, template.HTMLEscapeString("states and values of "+in.Assert+" "+in.Labels.String()+" since "+stamp(start)))
	for _, sg := range segments(in, trs, start, now) {
		x0, x1 := x(sg.from), x(sg.to)
		w := math.Max(x1-x0, 1)
		fmt.Fprintf(&b, `<rect class="seg st-%s" x="%.1f" y="0" width="%.1f" height="%d"><title>%s</title></rect>`,
			template.HTMLEscapeString(string(sg.state)), x0, w, bar,
			template.HTMLEscapeString(fmt.Sprintf("%s from %s to %s: %s", sg.state, stamp(sg.from), stamp(sg.to), sg.reason)))
	}
	fmt.Fprintf(&b, `<text class="axis" x="0" y="%d">%s</text>`, bar+12, template.HTMLEscapeString(ago(now, start)))
	fmt.Fprintf(&b, `<text class="axis" x="%d" y="%d" text-anchor="end">now</text>`, width, bar+12)
	asc := ascending(trs)
	for i, name := range names {
		type pt struct {
			t time.Time
			v float64
		}
		var pts []pt
		for _, t := range asc {
			if v, ok := t.Values[name]; ok && !t.At.Before(start) && !math.IsNaN(v) && !math.IsInf(v, 0) {
				pts = append(pts, pt{t.At, v})
			}
		}
		if v := in.Values[name]; !math.IsNaN(v) && !math.IsInf(v, 0) {
			pts = append(pts, pt{now, v})
		}
		top := bar + 16 + i*(band+6)
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, p := range pts {
			lo, hi = math.Min(lo, p.v), math.Max(hi, p.v)
		}
		if hi == lo {
			lo, hi = lo-1, hi+1
		}
		y := func(v float64) float64 {
			return math.Round((float64(top+band-2)-(v-lo)/(hi-lo)*float64(band-8))*10) / 10
		}
		fmt.Fprintf(&b, `<rect class="band" x="0" y="%d" width="%d" height="%d"/>`, top, width, band)
		var line []string
		for j, p := range pts {
			if j > 0 { // a step: the value holds until the next point
				line = append(line, fmt.Sprintf("%.1f,%.1f", x(p.t), y(pts[j-1].v)))
			}
			line = append(line, fmt.Sprintf("%.1f,%.1f", x(p.t), y(p.v)))
		}
		if len(pts) == 1 {
			line = append([]string{fmt.Sprintf("%.1f,%.1f", x(start), y(pts[0].v))}, line...)
		}
		fmt.Fprintf(&b, `<polyline class="val" points="%s"/>`, strings.Join(line, " "))
		fmt.Fprintf(&b, `<text class="axis" x="4" y="%d">%s = %s</text>`, top+12, template.HTMLEscapeString(name),
			template.HTMLEscapeString(formatValue(in.Values[name])))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every dynamic part above is escaped
}

// exprPart is a piece of an expression: text, or a name with its value.
type exprPart struct {
	Text  string
	Name  bool
	Value string
}

// resolveExpr splits an expression into text and the names that have
// values, so a page can show p99_ms (=73) < 50. String literals are kept
// as text.
func resolveExpr(expr string, values map[string]float64) []exprPart {
	var out []exprPart
	text := func(s string) {
		if s == "" {
			return
		}
		if n := len(out); n > 0 && !out[n-1].Name {
			out[n-1].Text += s
			return
		}
		out = append(out, exprPart{Text: s})
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			j = min(j+1, len(expr))
			text(expr[i:j])
			i = j
		case isLabelChar(c):
			j := i + 1
			for j < len(expr) && (isLabelChar(expr[j]) || (expr[j] >= '0' && expr[j] <= '9')) {
				j++
			}
			word := expr[i:j]
			prevDot := i > 0 && expr[i-1] == '.'
			if v, ok := values[word]; ok && !prevDot {
				out = append(out, exprPart{Text: word, Name: true, Value: formatValue(v)})
			} else {
				text(word)
			}
			i = j
		default:
			text(expr[i : i+1])
			i++
		}
	}
	return out
}
