package replay

import (
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/assertd/assertd"
)

// timelineWidth is the width of one assert's timeline, in SVG units.
const timelineWidth = 900.0

// The timeline's marks: incidents coloured by how bad they got, the
// source's gaps behind them, pages and runs on top.
type (
	htmlReport struct {
		Title   string
		Gaps    []Gap
		Notes   []string
		Figures []htmlFigures
		Asserts []htmlAssert
		Total   string
		Width   float64
		Ticks   []htmlTick
	}
	htmlAssert struct {
		Name, Verdict, Summary string
		Spans                  []htmlSpan
		Gaps                   []htmlSpan
		Pages                  []htmlMark
		Runs                   []htmlMark
	}
	// htmlFigures is one row of the figures' table (the last: the total).
	htmlFigures struct {
		Name, Verdict                string
		Total                        bool
		Incidents, Flaps             int
		Pending, Violated, Uncertain string
		Remediated, Verified, Failed int
		Refusals                     string
		Pages                        int
		ToPage                       string
	}
	htmlSpan struct {
		X, W  float64
		Class string
		Title string
	}
	htmlMark struct {
		X     float64
		Class string
		Title string
	}
	htmlTick struct {
		X     float64
		Label string
	}
)

// htmlTemplates are the report's one rendering: "report" is the body (the
// totals, a table of figures per assert, a timeline per assert), which the
// UI's replay page embeds; "page" wraps it into a standalone file with its
// own style. The UI styles the same classes in its style sheet.
var htmlTemplates = template.Must(template.New("report").Parse(`{{define "report"}}<div class="replay">
{{range .Gaps}}<div class="gapnote">Gap in source <b>{{.Source}}</b> {{.From.UTC.Format "Mon 2006-01-02 15:04:05"}} – {{.To.UTC.Format "15:04:05"}}: {{.Reason}}</div>{{end}}
{{range .Notes}}<div class="note">{{.}}</div>{{end}}
<p class="total">{{.Total}}</p>
<table class="figures"><thead><tr><th>assert</th><th>verdict</th><th>incidents</th><th>flaps</th><th>pending</th><th>violated</th><th>uncertain</th><th>remediations</th><th>verified</th><th>failed</th><th>refusals</th><th>pages</th><th>to page p50 / p99</th></tr></thead><tbody>
{{range .Figures}}<tr data-assert="{{.Name}}"><td>{{if .Total}}<b>{{.Name}}</b>{{else}}{{.Name}}{{end}}</td><td>{{.Verdict}}</td><td data-figure="incidents">{{.Incidents}}</td><td data-figure="flaps">{{.Flaps}}</td><td>{{.Pending}}</td><td>{{.Violated}}</td><td>{{.Uncertain}}</td><td data-figure="remediations">{{.Remediated}}</td><td data-figure="verified">{{.Verified}}</td><td data-figure="failed">{{.Failed}}</td><td>{{.Refusals}}</td><td data-figure="pages">{{.Pages}}</td><td>{{.ToPage}}</td></tr>
{{end}}</tbody></table>
<table class="timelines"><thead><tr><th>assert</th><th>timeline</th></tr></thead><tbody>
<tr><td></td><td><svg width="{{.Width}}" height="14">{{range .Ticks}}<text class="axis" x="{{.X}}" y="11">{{.Label}}</text>{{end}}</svg></td></tr>
{{range .Asserts}}<tr><td><b>{{.Name}}</b><br><span class="summary">{{.Verdict}}
{{.Summary}}</span></td>
<td><svg width="{{$.Width}}" height="28" role="img" aria-label="timeline of {{.Name}}">
<rect class="held" x="0" y="9" width="{{$.Width}}" height="10"/>
{{range .Gaps}}<rect class="gap" x="{{.X}}" y="4" width="{{.W}}" height="20"><title>{{.Title}}</title></rect>{{end}}
{{range .Spans}}<rect class="{{.Class}}" x="{{.X}}" y="9" width="{{.W}}" height="10"><title>{{.Title}}</title></rect>{{end}}
{{range .Runs}}<circle class="{{.Class}}" cx="{{.X}}" cy="24" r="3"><title>{{.Title}}</title></circle>{{end}}
{{range .Pages}}<path class="page" d="M{{.X}} 7 l-3 -6 h6 z"><title>{{.Title}}</title></path>{{end}}
</svg></td></tr>
{{end}}</tbody></table>
<p class="summary">Green: held. Yellow: pending. Red: violated or remediating; dark red: paged. Purple: uncertain. Grey: a gap in the source, or a stretch in which the assert had no data.
Triangles: pages. Dots: remediation runs (green verified, red failed).</p>
</div>{{end}}
{{define "page"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}
.note{background:#fff4d6;padding:.3em .6em;margin:.2em 0}.gapnote{background:#eee;padding:.3em .6em;margin:.2em 0}
svg{display:block}.held{fill:#e8f5e9}.pending{fill:#f2c94c}.violated,.remediating{fill:#eb5757}.escalated{fill:#9b1c1c}.uncertain{fill:#9b51e0}
.gap{fill:#bbb;opacity:.6}.page{fill:#111}.run-ok{fill:#27ae60}.run-failed{fill:#eb5757;stroke:#111}
.axis{fill:#666;font-size:10px}.summary{color:#555;font-size:12px;white-space:pre-line}.total{white-space:pre-line}
</style></head><body>
<h1>{{.Title}}</h1>
{{template "report" .}}
</body></html>
{{end}}`))

// writeHTML writes a standalone page with a timeline per assert.
func writeHTML(w io.Writer, r *Report) error {
	return htmlTemplates.ExecuteTemplate(w, "page", htmlData(r))
}

// HTML is the report's body as the standalone page shows it (the figures
// and a timeline per assert), for a page that embeds it: assertd's UI.
// Its classes are those the standalone page styles.
func HTML(r *Report) (template.HTML, error) {
	var b strings.Builder
	if err := htmlTemplates.ExecuteTemplate(&b, "report", htmlData(r)); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil //nolint:gosec // rendered by html/template
}

// htmlData lays the report out for the templates.
func htmlData(r *Report) htmlReport {
	span := r.To.Sub(r.From)
	if span <= 0 {
		span = r.Step
	}
	x := func(t time.Time) float64 {
		v := float64(t.Sub(r.From)) / float64(span) * timelineWidth
		return min(max(v, 0), timelineWidth)
	}
	page := htmlReport{Title: fmt.Sprintf("assertd replay %s – %s UTC", ts(r.From), ts(r.To)), Gaps: r.Gaps, Notes: r.Notes, Width: timelineWidth}
	var tb strings.Builder
	writeTotalsText(&tb, &r.Total, "")
	page.Total = tb.String()
	for i := 0; i <= 6; i++ {
		t := r.From.Add(span * time.Duration(i) / 6)
		page.Ticks = append(page.Ticks, htmlTick{X: min(x(t), timelineWidth-70), Label: t.UTC().Format("Mon 15:04")})
	}
	var gaps []htmlSpan
	for _, g := range r.Gaps {
		gaps = append(gaps, htmlSpan{X: x(g.From), W: max(x(g.To.Add(r.Step))-x(g.From), 1), Class: "gap",
			Title: fmt.Sprintf("%s %s – %s: %s", g.Source, ts(g.From), ts(g.To), g.Reason)})
	}
	for i := range r.Asserts {
		a := &r.Asserts[i]
		var b strings.Builder
		writeTotalsText(&b, &a.Totals, "")
		ha := htmlAssert{Name: a.Name, Verdict: a.verdict(), Summary: b.String(), Gaps: slices.Clone(gaps)}
		page.Figures = append(page.Figures, figures(a.Name, a.verdict(), false, &a.Totals))
		for _, g := range a.Gaps {
			ha.Gaps = append(ha.Gaps, htmlSpan{X: x(g.From), W: max(x(g.To.Add(r.Step))-x(g.From), 1), Class: "gap",
				Title: fmt.Sprintf("%s – %s: %s", ts(g.From), ts(g.To), g.Reason)})
		}
		for _, in := range a.all {
			ha.Spans = append(ha.Spans, htmlSpan{X: x(in.From), W: max(x(in.To)-x(in.From), 1), Class: string(in.Worst),
				Title: fmt.Sprintf("%s %s for %s, worst %s%s", in.Labels, ts(in.From), dur(in.Duration()), in.Worst, openPaged(in))})
		}
		for _, p := range a.Pages {
			ha.Pages = append(ha.Pages, htmlMark{X: x(p.At), Class: "page", Title: fmt.Sprintf("page %s %s level %d %s", ts(p.At), p.Channel, p.Level, p.Labels)})
		}
		for _, ru := range a.Runs {
			c := "run-failed"
			if ru.Status == string(assertd.RunSucceeded) {
				c = "run-ok"
			}
			ha.Runs = append(ha.Runs, htmlMark{X: x(ru.Started), Class: c, Title: fmt.Sprintf("run %s %s %s: %s", ts(ru.Started), ru.Remediation, ru.Labels, ru.Status)})
		}
		page.Asserts = append(page.Asserts, ha)
	}
	page.Figures = append(page.Figures, figures("total", fmt.Sprintf("%d asserts, %d no data", len(r.Asserts), r.Total.NoDataCount), true, &r.Total))
	return page
}

func figures(name, verdict string, total bool, t *Totals) htmlFigures {
	p := "–"
	if t.PagesSent > 0 {
		p = dur(t.ToPageP50) + " / " + dur(t.ToPageP99)
	}
	return htmlFigures{Name: name, Verdict: verdict, Total: total, Incidents: t.Incidents, Flaps: t.Flaps,
		Pending: dur(t.Pending), Violated: dur(t.Violated), Uncertain: dur(t.Uncertain),
		Remediated: t.Remediated, Verified: t.Verified, Failed: t.Failed, Refusals: counts(t.Refusals, str),
		Pages: t.PagesSent, ToPage: p}
}
