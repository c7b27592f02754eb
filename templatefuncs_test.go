package assertd

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"testing"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/prometheus/common/model"
	promtemplate "github.com/prometheus/prometheus/template"
	"github.com/prometheus/prometheus/util/features"
)

// templateCase is a template and the value it sees as .v.
type templateCase struct {
	text string
	v    any
}

func renderTemplateCases() []templateCase {
	var cases []templateCase
	numbers := []any{
		0.0, math.Copysign(0, -1), 0.01235, 1e-9, -1.0, 1.0, -0.5, 0.999, 1.5, 59.999, 60.0, 90.5, 999.9, 1000.0,
		1023.0, 1024.0, 1025.0, 1234.0, 3600.0, 86399.0, 86400.0, 1234567.0, 1234567.891, -1234567.891, -90.5,
		1e30, -1e30, 1e-30, 5e-25, 0.000123, -0.000123, math.MaxFloat64, math.SmallestNonzeroFloat64,
		math.NaN(), math.Inf(1), math.Inf(-1),
		1764592498.0, 1764592498.123, -1.5e9, 1e19, -1e19, 253402300800.0,
		42, int64(-7), uint(3), uint64(1 << 40), 90 * time.Second, 1500 * time.Millisecond,
		"0.01235", "1e-9", "-1", "NaN", "+Inf", "1234567.891", "", "abc",
		true, []string{"x"}, nil,
	}
	for _, f := range []string{"humanize", "humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp", "toTime", "toDuration"} {
		for _, v := range numbers {
			cases = append(cases, templateCase{"{{ " + f + " .v }}", v})
		}
		cases = append(cases, templateCase{"{{ .v | " + f + " }}", 0.01235})
	}
	cases = append(cases,
		templateCase{"{{ humanize 0.01235 }}|{{ humanize 1234567.0 }}|{{ humanize 0 }}|{{ humanize 1e-9 }}", nil},
		templateCase{"{{ humanizeDuration 1234567.891 }}|{{ humanizeDuration 0.25 }}|{{ humanizeDuration 0 }}|{{ humanizeDuration -3700 }}", nil},
		templateCase{"{{ humanize1024 1073741824.0 }}|{{ humanizePercentage 0.0123 }}|{{ humanizeTimestamp 1764592498 }}", nil},
		templateCase{"{{ (toTime .v).Unix }} {{ (toTime .v).Format \"2006-01-02T15:04:05Z07:00\" }}", 1764592498.5},
		templateCase{"{{ (toDuration .v).Seconds }} {{ toDuration .v }}", 1234567.891},
		templateCase{"{{ with args 1 \"a\" .v }}{{ .arg0 }} {{ .arg1 }} {{ .arg2 }} {{ .arg3 }}{{ end }}", 2.5},
		templateCase{"{{ template \"x\" args .v 2 }}{{ define \"x\" }}{{ .arg0 | humanize }}/{{ .arg1 }}{{ end }}", 0.5},
	)

	texts := []string{
		"", "localhost", "localhost:9090", "db-1.example.com", "db-1.example.com:5432", "10.0.0.1", "10.0.0.1:80",
		"[::1]:9100", "::1", "[fe80::1%eth0]:80", "host:port:extra", ":9090", "hello world", "hello WORLD",
		"o'neil mc-donald", "ÉCOLE été", "ǆemal ǉubljana", "straße", "a\tb\nc", "100% <b>&</b> \"q\"",
		"a+b=c&d/e?f#g", "ünïcödé", "\xff\xfe",
	}
	for _, f := range []string{"title", "toUpper", "toLower", "stripPort", "stripDomain", "urlQueryEscape", "safeHtml"} {
		for _, s := range texts {
			cases = append(cases, templateCase{"{{ " + f + " .v }}", s})
		}
		cases = append(cases, templateCase{"{{ .v | " + f + " }}", "mixed Case.example.org:80"})
	}
	for _, s := range []string{"", "1h30m", "-5m", "1d", "2w", "1y", "250ms", "0s", "1.5h", "bogus", "5"} {
		cases = append(cases, templateCase{"{{ parseDuration .v }}", s})
	}
	for _, s := range texts[:12] {
		cases = append(cases,
			templateCase{`{{ reReplaceAll "(.*):(\\d+)" "$1 port $2" .v }}`, s},
			templateCase{`{{ reReplaceAll "^[^.]*" "${0}-x" .v }}`, s},
			templateCase{`{{ if match "^db-\\d+" .v }}db{{ else }}other{{ end }}`, s},
			templateCase{`{{ match "example" .v }}`, s},
		)
	}
	cases = append(cases,
		templateCase{`{{ .v | reReplaceAll "o" "0" | toUpper }}`, "foo.boo"},
		templateCase{`{{ reReplaceAll "[" "" .v }}`, "x"},
		templateCase{`{{ match .v "abc" }}`, "("},
	)
	return cases
}

// Every function shared with Prometheus renders as Prometheus' template
// engine renders it: the same template and value, expanded by assertd and
// by prometheus/template, give the same text, or both fail.
func TestTemplateFuncsRenderAsPrometheus(t *testing.T) {
	rendered, failed := 0, 0
	for _, c := range renderTemplateCases() {
		data := map[string]any{"v": c.v}
		want, werr := promtemplate.NewTemplateExpander(context.Background(), c.text, "t", data, model.Time(0), nil, &url.URL{}, nil).Expand()
		tm, err := ParseTemplate("t", c.text, TemplateFields{"v": nil})
		if err != nil {
			if werr == nil {
				t.Errorf("%s with %#v: assertd refuses it (%v), Prometheus renders %q", c.text, c.v, err, want)
			}
			failed++
			continue
		}
		var b bytes.Buffer
		err = tm.Execute(&b, data)
		switch {
		case (err != nil) != (werr != nil):
			t.Errorf("%s with %#v: assertd %q (%v), Prometheus %q (%v)", c.text, c.v, b.String(), err, want, werr)
		case err == nil && b.String() != want:
			t.Errorf("%s with %#v: assertd %q, Prometheus %q", c.text, c.v, b.String(), want)
		case err == nil:
			rendered++
		default:
			failed++
		}
	}
	t.Logf("%d cases render the same text, %d fail in both", rendered, failed)
}

// Each of Prometheus' template functions is either offered, with the same
// name, and rendered by the comparison above, or refused at parse time with
// what to write instead.
func TestTemplateFuncsCoverPrometheus(t *testing.T) {
	reg := features.NewRegistry()
	promtemplate.RegisterFeatures(reg)
	prom := reg.Get()[features.TemplatingFunctions]
	if len(prom) < 20 {
		t.Fatalf("Prometheus lists %d template functions: %v", len(prom), prom)
	}
	used := map[string]bool{}
	for _, c := range renderTemplateCases() {
		tm, err := template.New("t").Funcs(TemplateFuncs()).Parse(c.text)
		if err != nil {
			t.Fatalf("%s: %v", c.text, err)
		}
		for _, d := range tm.Templates() {
			collectIdents(d.Tree.Root, used)
		}
	}
	ours := TemplateFuncs()
	for name := range prom {
		_, offered := ours[name]
		hint, refused := prometheusOnly[name]
		switch {
		case offered && refused:
			t.Errorf("%s is both offered and refused", name)
		case offered && !used[name]:
			t.Errorf("%s is shared with Prometheus but no case compares it", name)
		case !offered && !refused:
			t.Errorf("Prometheus' %s is neither offered nor refused with a hint", name)
		case refused:
			_, err := ParseTemplate("t", "{{ "+name+" }}", nil)
			if err == nil || !strings.Contains(err.Error(), "one of Prometheus' template functions") || !strings.Contains(err.Error(), hint) {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	for name := range prometheusOnly {
		if !prom[name] {
			t.Errorf("%s is refused as Prometheus', but Prometheus has no such function", name)
		}
	}
	for _, own := range []string{"lower", "upper", "trim", "join"} {
		if _, ok := prom[own]; ok {
			t.Errorf("%s is assertd's own, but Prometheus has a function of that name now: compare it", own)
		}
	}
}

func collectIdents(n parse.Node, into map[string]bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n != nil {
			for _, c := range n.Nodes {
				collectIdents(c, into)
			}
		}
	case *parse.ActionNode:
		collectIdents(n.Pipe, into)
	case *parse.TemplateNode:
		collectIdents(n.Pipe, into)
	case *parse.PipeNode:
		if n != nil {
			for _, c := range n.Cmds {
				collectIdents(c, into)
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			collectIdents(a, into)
		}
	case *parse.ChainNode:
		collectIdents(n.Node, into)
	case *parse.IdentifierNode:
		into[n.Ident] = true
	case *parse.IfNode:
		collectIdents(n.Pipe, into)
		collectIdents(n.List, into)
		collectIdents(n.ElseList, into)
	case *parse.WithNode:
		collectIdents(n.Pipe, into)
		collectIdents(n.List, into)
		collectIdents(n.ElseList, into)
	case *parse.RangeNode:
		collectIdents(n.Pipe, into)
		collectIdents(n.List, into)
		collectIdents(n.ElseList, into)
	}
}

// The formats the functions are known by, literally: Prometheus' humanize
// below 1, its duration form in days, hours, minutes and seconds.
func TestTemplateFuncs(t *testing.T) {
	for text, want := range map[string]string{
		`{{ humanize 1234567.0 }} {{ humanizeDuration 90.5 }} {{ humanizePercentage 0.0123 }}`:                             "1.235M 1m 30s 1.23%",
		`{{ humanize 0.01235 }} {{ humanize 1e-9 }} {{ humanize -1 }} {{ humanize 0 }}`:                                    "12.35m 1n -1 0",
		`{{ humanizeDuration 1234567.891 }} {{ humanizeDuration 0.25 }} {{ humanizeDuration -60 }}`:                        "14d 6h 56m 7s 250ms -1m 0s",
		`{{ humanize1024 1073741824.0 }} {{ humanize1024 1 }} {{ humanizeTimestamp 1764592498 }}`:                          "1Gi 1 2025-12-01 12:34:58 +0000 UTC",
		`{{ title "db primary" }} {{ toUpper "a" }}{{ toLower "B" }} {{ upper "c" }}{{ lower "D" }}`:                       "Db Primary Ab Cd",
		`{{ reReplaceAll "(.*):.*" "$1" "db-1:5432" }} {{ match "^db" "db-1" }} {{ stripDomain "db-1.example.com:5432" }}`: "db-1 true db-1:5432",
		`{{ parseDuration "1h30m" }} {{ trim " x " }} {{ safeHtml "<b>" }} {{ urlQueryEscape "a b&c" }}`:                   "5400 x <b> a+b%26c",
	} {
		tm, err := ParseTemplate("t", text, nil)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		var b bytes.Buffer
		if err := tm.Execute(&b, nil); err != nil || b.String() != want {
			t.Errorf("%s: %q %v, want %q", text, b.String(), err, want)
		}
	}
}

// A Prometheus function or variable that assertd's templates do not have,
// or a literal pattern that is not a regular expression, is refused when
// the file is loaded, with what to write instead.
func TestParseTemplateHints(t *testing.T) {
	for text, want := range map[string]string{
		`{{ query "up" | first | value }}`: `function "query" not defined: query is one of Prometheus' template functions that assertd does not offer; templates do not run PromQL: add the expression to the assert's query:`,
		`{{ now }}`:                        "add query: {t: time()} to the assert and write {{ .Values.t }}",
		`{{ externalURL }}/alerts`:         "write the URL literally",
		`{{ $labels.instance }}`:           `undefined variable "$labels": $labels is a variable of Prometheus' rule templates; write .Labels (such as {{ .Labels.instance }})`,
		`{{ $value | humanize }}`:          "write .Values and the query's name",
		`{{ nofunc 1 }}`:                   `invalid template: function "nofunc" not defined`,
		`{{ match "(" "x" }}`:              "match: the pattern \"(\" is not a regular expression (Go's RE2 syntax, as in Prometheus): error parsing regexp: missing closing ): `(`",
		`{{ if true }}{{ "x" | reReplaceAll "[a" "" }}{{ end }}`: `reReplaceAll: the pattern "[a" is not a regular expression`,
		`{{ reReplaceAll "(?<name>x)" "" "x" }}`:                 "", // RE2 has named groups of this form
		`{{ match "^db-\\d+$" "db-1" }}`:                         "",
	} {
		_, err := ParseTemplate("t", text, nil)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", text, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: got %v, want %q", text, err, want)
		}
	}
	if _, err := ParseTemplate("t", `{{ nofunc 1 }}`, nil); err == nil || strings.Contains(err.Error(), "Prometheus") {
		t.Errorf("an unknown function is not Prometheus': %v", err)
	}
}

// One parsed template runs on many goroutines at once (every instance's
// annotations, every run's steps): the functions keep no shared state.
func TestTemplateFuncsConcurrent(t *testing.T) {
	tm, err := ParseTemplate("t", `{{ title .v }} {{ reReplaceAll "o+" "0" .v }} {{ humanize 0.5 }}`, TemplateFields{"v": nil})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				v := fmt.Sprintf("foo ünï %d.%d", i, j)
				var b bytes.Buffer
				if err := tm.Execute(&b, map[string]any{"v": v}); err != nil {
					errs <- err
					return
				}
				if want := fmt.Sprintf("Foo Ünï %d.%d f0 ünï %d.%d 500m", i, j, i, j); b.String() != want {
					errs <- fmt.Errorf("%q, want %q", b.String(), want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
