package promrules_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/template"
)

// renderRule uses Prometheus' template functions and variables; the test
// expands its annotations and labels with prometheus/template directly and
// compares.
const renderRule = `groups:
  - name: render
    interval: 1m
    rules:
      - alert: Render
        expr: rd_value > 0
        labels:
          sev: '{{ $labels.job | toUpper }}'
          static: page
        annotations:
          labels: '{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}'
          value: '{{ $value }} {{ humanize $value }} {{ humanize1024 $value }} {{ humanizePercentage $value }}'
          durations: '{{ humanizeDuration $value }} {{ $value | humanizeTimestamp }}'
          text: '{{ title "hello world" }} {{ toLower "ABC" }} {{ reReplaceAll "(a+)" "<$1>" "baaad" }} {{ match "^d" $labels.instance }}'
          external: '{{ $externalLabels.cluster }} {{ $externalURL }} {{ pathPrefix }}'
          query: '{{ with query "sum(rd_value)" }}{{ . | first | value | printf "%.3f" }}{{ end }} {{ with query "rd_value" }}{{ range . }}{{ .Labels.instance }}{{ end }}{{ end }}'
          misc: '{{ "db-1.example.org:5432" | stripPort }} {{ "db-1.example.org" | stripDomain }} {{ "90s" | parseDuration }} {{ "a&b" | safeHtml }} {{ "rd_value" | graphLink }} {{ "rd_value" | tableLink }}'
`

func TestRenderLikePrometheus(t *testing.T) {
	r := newRigWith(t, renderRule, map[string]string{"cluster": "eu-1"})
	app := r.emb.Appendable().Appender(context.Background())
	for inst, v := range map[string]float64{"db-1": 0.0123456, "db-2": 1234567.891, "web-1": 1.7e9} {
		ls := labels.FromStrings("__name__", "rd_value", "instance", inst, "job", "pg")
		for d := -2 * time.Minute; d <= time.Minute; d += 15 * time.Second {
			if _, err := app.Append(0, ls, r.first.Add(d).UnixMilli(), v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	r.ev.Start(context.Background())
	ev := r.step(0)
	if len(ev.Alerts) != 3 {
		t.Fatalf("%d alerts, want 3: %+v", len(ev.Alerts), ev)
	}

	// What Prometheus renders: the expression's result at the evaluation,
	// each sample expanded by prometheus/template with Prometheus' data and
	// variables.
	query := r.emb.RuleQuery()
	res, err := query(context.Background(), "rd_value > 0", ev.At)
	if err != nil {
		t.Fatal(err)
	}
	ext, _ := url.Parse(extURL)
	set := ruleSet(t, renderRule)
	rule := set.PromRules[0].Groups.Groups[0].Rules[0]
	for _, smpl := range res {
		data := template.AlertTemplateData(smpl.Metric.Map(), map[string]string{"cluster": "eu-1"}, extURL, smpl)
		expand := func(text string) string {
			defs := "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
			out, err := template.NewTemplateExpander(context.Background(), defs+text, "__alert_Render", data,
				model.Time(timestamp.FromTime(ev.At)), template.QueryFunc(query), ext, nil).Expand()
			if err != nil {
				t.Fatalf("expanding %q: %v", text, err)
			}
			return out
		}
		inst := smpl.Metric.Get("instance")
		var got *labels.Labels
		var gotLabels labels.Labels
		for _, a := range ev.Alerts {
			if a.Labels.Get("instance") == inst {
				got, gotLabels = &a.Annotations, a.Labels
			}
		}
		if got == nil {
			t.Fatalf("no alert for %s", inst)
		}
		for name, text := range rule.Annotations {
			want := expand(text)
			if strings.Contains(want, "error") {
				t.Fatalf("%s: %s", name, want)
			}
			if g := got.Get(name); g != want {
				t.Errorf("%s annotation %s:\nassertd    %q\nPrometheus %q", inst, name, g, want)
			}
		}
		for name, text := range rule.Labels {
			if g, want := gotLabels.Get(name), expand(text); g != want {
				t.Errorf("%s label %s: assertd %q, Prometheus %q", inst, name, g, want)
			}
		}
		if gotLabels.Get("alertname") != "Render" || gotLabels.Has("__name__") {
			t.Errorf("%s labels %s: want alertname=Render and no __name__", inst, gotLabels)
		}
	}
	// A few renderings spelled out, so that a change of both sides shows.
	for _, a := range ev.Alerts {
		if a.Labels.Get("instance") == "db-1" {
			if v := a.Annotations.Get("value"); v != "0.0123456 12.35m 0.01235 1.235%" {
				t.Errorf("db-1 value annotation %q", v)
			}
			if v := a.Annotations.Get("external"); v != "eu-1 "+extURL+" " {
				t.Errorf("db-1 external annotation %q", v)
			}
		}
	}
}
