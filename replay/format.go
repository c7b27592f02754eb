package replay

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/assertd/assertd"
)

// Formats are the report's output formats.
var Formats = []string{"text", "json", "markdown", "junit", "html"}

// Write writes the report in a format.
func Write(w io.Writer, r *Report, format string) error {
	switch format {
	case "", "text":
		return writeText(w, r)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "markdown":
		return writeMarkdown(w, r)
	case "junit":
		return writeJUnit(w, r)
	case "html":
		return writeHTML(w, r)
	}
	return fmt.Errorf("--format %s: write one of %s", format, strings.Join(Formats, ", "))
}

const stamp = "Mon 2006-01-02 15:04:05"

func ts(t time.Time) string { return t.UTC().Format(stamp) }

// dur prints a duration the Prometheus way, rounded to the second.
func dur(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	return assertd.Duration(d.Round(time.Second)).String()
}

// verdict is an assert's summary in a few words. A stretch without data
// is said: the assert is not known to have held there.
func (a *AssertReport) verdict() string {
	var v string
	switch {
	case a.NotReplayed:
		return "not replayed (triggered by Alertmanager: no alert history)"
	case a.NoData:
		return "no data (uncertain by policy: nothing can be said)"
	case a.PagesSent > 0:
		v = fmt.Sprintf("would have paged %d time%s", a.PagesSent, plural(a.PagesSent))
	case a.Remediated > 0:
		v = fmt.Sprintf("would have remediated %d time%s without a page", a.Remediated, plural(a.Remediated))
	case a.Incidents > 0:
		v = "violated, no page"
	case a.NoDataTime > 0:
		v = "held where it had data"
	default:
		return "held"
	}
	if a.NoDataTime > 0 {
		v += fmt.Sprintf("; no data for %s (uncertain by policy there)", dur(a.NoDataTime))
	}
	return v
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func counts[K comparable](m map[K]int, name func(K) string) string {
	var parts []string
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b K) int { return strings.Compare(name(a), name(b)) })
	for _, k := range keys {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", name(k), m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func str(s string) string { return s }
func level(l int) string  { return fmt.Sprintf("level %d", l) }

func writeText(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "replay %s – %s UTC, every %s: %d evaluations, %d range queries for %d distinct queries",
		ts(r.From), ts(r.To), dur(r.Step), r.Evaluations, r.RangeQueries, r.Queries)
	if r.RuleEvaluations > 0 {
		fmt.Fprintf(&b, ", %d rule group evaluations", r.RuleEvaluations)
	}
	b.WriteString("\n")
	for _, g := range r.Gaps {
		fmt.Fprintf(&b, "GAP source %s %s – %s: %s\n", g.Source, ts(g.From), ts(g.To), g.Reason)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "NOTE %s\n", n)
	}
	for i := range r.Asserts {
		a := &r.Asserts[i]
		fmt.Fprintf(&b, "\n%s: %s\n", a.Name, a.verdict())
		writeTotalsText(&b, &a.Totals, "  ")
		if !a.NoData {
			writeGapsText(&b, a.Gaps, "  ")
		}
		for _, p := range a.Pages {
			fmt.Fprintf(&b, "  page %s %s level %d %s (%s)\n", ts(p.At), p.Channel, p.Level, p.Labels, p.State)
		}
		for _, ru := range a.Runs {
			fmt.Fprintf(&b, "  run  %s %s %s: %s\n", ts(ru.Started), ru.Remediation, ru.Labels, ru.Status)
		}
		for _, in := range a.Longest {
			fmt.Fprintf(&b, "  incident %s for %s %s, worst %s%s\n", ts(in.From), dur(in.Duration()), in.Labels, in.Worst, openPaged(in))
		}
	}
	fmt.Fprintf(&b, "\ntotal: %d asserts, %d with no data\n", len(r.Asserts), r.Total.NoDataCount)
	writeTotalsText(&b, &r.Total, "  ")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeGapsText lists an assert's stretches without data.
func writeGapsText(b *strings.Builder, gaps []Gap, indent string) {
	for _, g := range gaps {
		fmt.Fprintf(b, "%sno data %s – %s: %s\n", indent, ts(g.From), ts(g.To), g.Reason)
	}
}

func openPaged(in Incident) string {
	s := ""
	if in.Paged {
		s += ", paged"
	}
	if in.Open {
		s += ", still open at the end"
	}
	return s
}

func writeTotalsText(b *strings.Builder, t *Totals, indent string) {
	fmt.Fprintf(b, "%spending %s, violated %s, uncertain %s; %d incident%s, %d flap%s\n", indent, dur(t.Pending), dur(t.Violated), dur(t.Uncertain), t.Incidents, plural(t.Incidents), t.Flaps, plural(t.Flaps))
	fmt.Fprintf(b, "%sremediations %d (verified %d, failed %d); refusals: %s\n", indent, t.Remediated, t.Verified, t.Failed, counts(t.Refusals, str))
	fmt.Fprintf(b, "%spages %d: %s; by level: %s", indent, t.PagesSent, counts(t.ByChannel, str), counts(t.ByLevel, level))
	if t.PagesSent > 0 {
		fmt.Fprintf(b, "; first violation to page p50 %s, p99 %s", dur(t.ToPageP50), dur(t.ToPageP99))
	}
	b.WriteString("\n")
}

// writeMarkdown fits a pull-request comment: one table row per assert, the
// gaps and the pages listed below.
func writeMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### assertd replay %s – %s UTC (every %s)\n\n", ts(r.From), ts(r.To), dur(r.Step))
	for _, g := range r.Gaps {
		fmt.Fprintf(&b, "> **Gap** in source `%s` %s – %s: %s\n", g.Source, ts(g.From), ts(g.To), g.Reason)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "> **Note** %s\n", n)
	}
	if len(r.Gaps)+len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("| assert | verdict | pending | violated | uncertain | flaps | remediations (verified/failed) | refusals | pages | p50 / p99 to page |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	row := func(name, verdict string, t *Totals) {
		p := "–"
		if t.PagesSent > 0 {
			p = dur(t.ToPageP50) + " / " + dur(t.ToPageP99)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %d (%d/%d) | %s | %d: %s | %s |\n", name, verdict,
			dur(t.Pending), dur(t.Violated), dur(t.Uncertain), t.Flaps, t.Remediated, t.Verified, t.Failed,
			counts(t.Refusals, str), t.PagesSent, counts(t.ByChannel, str), p)
	}
	for i := range r.Asserts {
		a := &r.Asserts[i]
		row("`"+a.Name+"`", a.verdict(), &a.Totals)
	}
	row("**total**", fmt.Sprintf("%d asserts, %d no data", len(r.Asserts), r.Total.NoDataCount), &r.Total)
	var pages []string
	for _, a := range r.Asserts {
		for _, p := range a.Pages {
			pages = append(pages, fmt.Sprintf("- %s `%s` %s → %s (level %d)", ts(p.At), a.Name, p.Labels, p.Channel, p.Level))
		}
	}
	if len(pages) > 0 {
		fmt.Fprintf(&b, "\n<details><summary>%d pages</summary>\n\n%s\n\n</details>\n", len(pages), strings.Join(pages, "\n"))
	}
	var gaps []string
	for _, a := range r.Asserts {
		if a.NoData {
			continue // the whole window: the verdict says it
		}
		for _, g := range a.Gaps {
			gaps = append(gaps, fmt.Sprintf("- `%s` %s – %s: %s", a.Name, ts(g.From), ts(g.To), g.Reason))
		}
	}
	if len(gaps) > 0 {
		fmt.Fprintf(&b, "\n<details><summary>%d stretches without data</summary>\n\n%s\n\n</details>\n", len(gaps), strings.Join(gaps, "\n"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeJUnit makes each assert a test case that fails when it would have
// paged, is skipped when it had no data, and passes otherwise.
func writeJUnit(w io.Writer, r *Report) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	}
	type skipped struct {
		Message string `xml:"message,attr"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Failure   *failure `xml:"failure,omitempty"`
		Skipped   *skipped `xml:"skipped,omitempty"`
		Out       string   `xml:"system-out,omitempty"`
	}
	type suite struct {
		XMLName  xml.Name   `xml:"testsuite"`
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Skipped  int        `xml:"skipped,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	s := suite{Name: fmt.Sprintf("assertd replay %s – %s", ts(r.From), ts(r.To)), Tests: len(r.Asserts)}
	for i := range r.Asserts {
		a := &r.Asserts[i]
		var out strings.Builder
		writeTotalsText(&out, &a.Totals, "")
		if !a.NoData {
			writeGapsText(&out, a.Gaps, "")
		}
		c := testcase{Name: a.Name, Classname: "replay", Out: out.String()}
		switch {
		case a.NoData, a.NotReplayed:
			s.Skipped++
			c.Skipped = &skipped{Message: a.verdict()}
		case a.PagesSent > 0:
			s.Failures++
			var lines []string
			for _, p := range a.Pages {
				lines = append(lines, fmt.Sprintf("%s %s level %d %s", ts(p.At), p.Channel, p.Level, p.Labels))
			}
			c.Failure = &failure{Message: a.verdict(), Text: strings.Join(lines, "\n")}
		}
		s.Cases = append(s.Cases, c)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
