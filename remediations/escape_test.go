package remediations

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/strictyaml"
)

func httpRem(h HTTP) Remediation {
	return Remediation{Name: "fix", Steps: []Step{{Name: "call", HTTP: &h}, verifyStep()}}
}

var jsonHeader = map[string]Value{"Content-Type": {Value: "application/json; charset=utf-8"}}

// Templates whose values could not be escaped for where they land are
// refused when the remediation is compiled, saying what to write instead.
func TestCompileRefusesUnescapableTemplates(t *testing.T) {
	for _, tc := range []struct {
		name string
		rem  Remediation
		want string // "" compiles
	}{
		{"host from a label", httpRem(HTTP{URL: "http://{{ .Labels.instance }}/restart"}),
			"url: the url's host cannot come from a template ({{.Labels.instance}}): write the scheme and host literally"},
		{"port from a label", httpRem(HTTP{URL: "http://lb:{{ .Labels.port }}/restart"}), "the url's host cannot come from a template"},
		{"host suffix from a label", httpRem(HTTP{URL: "http://lb{{ .Labels.x }}/"}), "the url's host cannot come from a template"},
		{"scheme from a label", httpRem(HTTP{URL: "{{ .Labels.scheme }}://lb/"}), "the url's scheme cannot come from a template"},
		{"host chosen by a condition", httpRem(HTTP{URL: "http://{{ if .Labels.a }}a{{ else }}b{{ end }}.lb/"}), "the url's host cannot come from a template"},
		{"path and query from labels", httpRem(HTTP{URL: "http://lb/servers/{{ .Labels.instance }}?zone={{ .Labels.zone }}"}), ""},
		{"branches ending in path and query", httpRem(HTTP{URL: "http://lb/s/{{ if .Labels.q }}?q={{ end }}{{ .Labels.v }}"}),
			"the branches of {{if}} end in different places (the url's query and the url's path)"},
		{"a loop that moves to the query", httpRem(HTTP{URL: "http://lb/s{{ range .Values }}?{{ . }}{{ end }}"}), "the body of {{range}} moves from"},
		{"sub-template", httpRem(HTTP{URL: `http://lb/{{ define "x" }}y{{ end }}{{ template "x" }}`}), "{{template}} cannot be used here"},
		{"templated body without a JSON content type", httpRem(HTTP{URL: "http://lb/", Body: "name={{ .Labels.instance }}"}),
			"body inserts values, but the request is not JSON, so they cannot be escaped: add headers: {Content-Type: application/json} to have them JSON-encoded, or write body_escape: none"},
		{"body_escape none", httpRem(HTTP{URL: "http://lb/", Body: "name={{ .Labels.instance }}", BodyEscape: "none"}), ""},
		{"literal body needs nothing", httpRem(HTTP{URL: "http://lb/", Body: `{"admin_state": "ready"}`}), ""},
		{"body_escape json without the content type", httpRem(HTTP{URL: "http://lb/", Body: `{"a": 1}`, BodyEscape: "json"}), "body_escape json needs the JSON content type"},
		{"body_escape unknown", httpRem(HTTP{URL: "http://lb/", BodyEscape: "html"}), `body_escape must be json or none, not "html"`},
		{"JSON body", httpRem(HTTP{URL: "http://lb/", Headers: jsonHeader, Body: `{"a": "{{ .Labels.a }}", "n": {{ .Values.ms }}}`}), ""},
		{"JSON +json media type", httpRem(HTTP{URL: "http://lb/", Headers: map[string]Value{"content-type": {Value: "application/merge-patch+json"}}, Body: `{"a": "{{ .Labels.a }}"}`}), ""},
		{"value after a backslash", httpRem(HTTP{URL: "http://lb/", Headers: jsonHeader, Body: `{"a": "\{{ .Labels.a }}"}`}), "follows a backslash inside a JSON string"},
		{"unclosed JSON string", httpRem(HTTP{URL: "http://lb/", Headers: jsonHeader, Body: `{"a": "{{ .Labels.a }}}`}), "a JSON string is not closed"},
		{"allow pattern that is not a regexp", Remediation{Name: "fix", Allow: map[string]string{"instance": "[a-"}, Steps: []Step{{Name: "r", Run: []string{"true"}}, verifyStep()}},
			"allow: the pattern of instance is not a regular expression"},
		{"allow for a bad label name", Remediation{Name: "fix", Allow: map[string]string{"__name__": "x"}, Steps: []Step{{Name: "r", Run: []string{"true"}}, verifyStep()}},
			`allow: "__name__" is not a label name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.rem
			_, errs := Compile(&r, (*strictyaml.Positions)(nil).In("remediations", 0))
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Fatalf("errors: %v", errs)
			case tc.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Msg, tc.want)):
				t.Fatalf("errors %v, want one with %q", errs, tc.want)
			}
		})
	}
}

// check warns about each label a url or an argv uses without an allow
// pattern, and about none that has one.
func TestWarningsForUnguardedLabels(t *testing.T) {
	r := Remediation{Name: "fix", Allow: map[string]string{"instance": "[a-z0-9-]+"}, Steps: []Step{
		{Name: "call", HTTP: &HTTP{URL: "http://lb/servers/{{ .Labels.instance }}/{{ index .Labels \"zone\" }}"}},
		{Name: "run", Run: []string{"systemctl", "restart", "api@{{ .Labels.instance }}", "{{ .Labels.cluster }}", "{{ range $k, $v := .Labels }}{{ $v }}{{ end }}"}},
		verifyStep()}}
	c, errs := Compile(&r, (*strictyaml.Positions)(nil).In("remediations", 0))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var got []string
	for _, w := range c.Warnings {
		got = append(got, w.Msg)
	}
	want := []string{
		"step call: url uses .Labels.zone, which has no allow pattern: add allow: {zone: '^[a-z0-9-]+$'} (the values it may take) so that nothing else reaches it",
		"step run: run[3] uses .Labels.cluster, which has no allow pattern: add allow: {cluster: '^[a-z0-9-]+$'} (the values it may take) so that nothing else reaches it",
		"step run: run[4] uses .Labels as a whole: any label value may reach it; name the labels and give each an allow pattern",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The escaper, fuzzed: whatever a label holds, a url renders with the
// template's own scheme, host and path shape, the value decoding back from
// its one segment; a JSON body renders valid JSON with the same keys; an
// argv element is the value or a refusal.
func FuzzEscaper(f *testing.F) {
	for _, s := range []string{"a", "../../admin/shutdown", "2-a?x=1&force=true", "2-b#frag", `3-x", "action": "delete-all", "z": "`, "-rf", "a\nb", "a\x00b", "%2e%2e", "..", "\u2028", "\xff"} {
		f.Add(s)
	}
	rem, errs := Compile(&Remediation{Name: "fix", Steps: []Step{
		{Name: "call", HTTP: &HTTP{URL: "https://lb.internal/servers/{{ .Labels.v }}?r={{ .Labels.v }}", Headers: jsonHeader,
			Body: `{"s": "{{ .Labels.v }}", "b": {{ .Labels.v }}}`}},
		{Name: "run", Run: []string{"prog", "{{ .Labels.v }}"}},
		verifyStep()}}, (*strictyaml.Positions)(nil).In("remediations", 0))
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	call, run := &rem.Steps[0], &rem.Steps[1]
	f.Fuzz(func(t *testing.T, v string) {
		data := templateData(rem, assertd.Instance{Labels: assertd.Labels{"v": v}}, "r1")
		if u, err := render("url", call.URL, data, false); err == nil {
			if err := checkURL(call, u); err != nil {
				t.Fatalf("%q: %v", v, err)
			}
			rest, ok := strings.CutPrefix(u, "https://lb.internal/servers/")
			seg, query, found := strings.Cut(rest, "?r=")
			if !ok || !found || strings.ContainsAny(seg, "/?#") || strings.ContainsAny(query, "&#=?") {
				t.Fatalf("%q renders the url %q", v, u)
			}
		} else if v != "" && v != "." && v != ".." {
			t.Fatalf("%q refused in the url: %v", v, err)
		}
		if body, err := renderBody(call, data); err == nil {
			var m map[string]any
			if err := jsonUnmarshal(body, &m); err != nil || len(m) != 2 || m["s"] != m["b"] {
				t.Fatalf("%q renders the body %q (%v)", v, body, err)
			}
		} else if !strings.Contains(err.Error(), "not valid JSON") {
			t.Fatalf("%q refused in the body: %v", v, err)
		}
		a, err := render("run[1]", run.Run[1], data, false)
		if err == nil && (a != v || strings.HasPrefix(a, "-")) {
			t.Fatalf("%q renders the argument %q", v, a)
		}
	})
}

func jsonUnmarshal(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// URL templates, fuzzed: whatever template compiles, with whatever label
// value, renders a url whose scheme and host are the template's literal
// ones, or is refused.
func FuzzURLTemplate(f *testing.F) {
	for _, s := range [][2]string{
		{"http://lb/servers/{{ .Labels.v }}", "../../admin"},
		{"https://lb.internal:8443/a/{{ .Labels.v }}?q={{ .Labels.v }}#{{ .Labels.v }}", "x@evil/#?"},
		{"http://lb/{{ if .Labels.v }}{{ .Labels.v }}{{ else }}none{{ end }}", "@evil.com"},
		{"http://{{ .Labels.v }}/", "evil.com"},
		{"http://lb{{ .Labels.v }}/", ".evil.com"},
		{"http:/{{ .Labels.v }}", "/evil.com/"},
		{"http://lb/{{ range .Labels }}{{ . }}{{ end }}", "//evil.com"},
		{`http://lb/{{ reReplaceAll "x" "/@evil.com/" .Labels.v }}`, "x"},
		{"http://lb{{ safeHtml .Labels.v }}/{{ title .Labels.v }}", ".evil.com"},
		{"http://lb/{{ stripDomain .Labels.v }}?{{ urlQueryEscape .Labels.v }}", "evil.com:80/#"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, tmpl, v string) {
		r := Remediation{Name: "fix", Steps: []Step{{Name: "call", HTTP: &HTTP{URL: tmpl}}, verifyStep()}}
		c, errs := Compile(&r, (*strictyaml.Positions)(nil).In("remediations", 0))
		if len(errs) > 0 {
			return
		}
		st := &c.Steps[0]
		if st.URLBase == nil || st.URLBase.Host == "" {
			t.Fatalf("%q compiled without a literal host", tmpl)
		}
		data := templateData(c, assertd.Instance{Labels: assertd.Labels{"v": v}}, "r1")
		u, err := render("url", st.URL, data, false)
		if err != nil {
			return
		}
		pu, err := url.Parse(u)
		if err != nil {
			return // refused by checkURL at run time
		}
		if pu.Scheme != st.URLBase.Scheme || pu.Host != st.URLBase.Host || pu.User != nil {
			t.Fatalf("%q with %q renders %q: scheme and host %s://%s, not the literal %s://%s", tmpl, v, u, pu.Scheme, pu.Host, st.URLBase.Scheme, st.URLBase.Host)
		}
	})
}

// A rendered url whose path holds a dot segment is refused at run time,
// wherever the segment came from (values cannot make one: "." and ".."
// are refused, and the dot stays a dot).
func TestDotSegmentRefused(t *testing.T) {
	rem := compileRem(t, httpRem(HTTP{URL: "http://lb/servers/../{{ .Labels.v }}"}))
	st := &rem.Steps[0]
	data := templateData(rem, assertd.Instance{Labels: assertd.Labels{"v": "a"}}, "r1")
	u, err := render("url", st.URL, data, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkURL(st, u); err == nil || !strings.Contains(err.Error(), "dot segment (..)") {
		t.Fatalf("%q: %v", u, err)
	}
}

// Prometheus' template functions write through the escaper like any value:
// what safeHtml, title, toUpper or reReplaceAll return is escaped for where
// it lands, or refused there.
func TestPrometheusFuncsEscaped(t *testing.T) {
	rem := compileRem(t, Remediation{Name: "fix", Steps: []Step{
		{Name: "call", HTTP: &HTTP{
			URL:     `https://lb.internal/servers/{{ safeHtml .Labels.v }}/{{ toUpper .Labels.v }}?r={{ reReplaceAll "a" "&x=" .Labels.v }}#{{ title .Labels.v }}`,
			Headers: jsonHeader,
			Body:    `{"s": "{{ safeHtml .Labels.v }}", "b": {{ safeHtml .Labels.v }}, "h": {{ humanizeDuration .Values.lag_s }}, "t": "{{ toTime .Values.lag_s }}"}`}},
		{Name: "run", Run: []string{"prog", "{{ safeHtml .Labels.v }}", "{{ reReplaceAll \"^a\" \"-\" .Labels.v }}", "x={{ stripPort .Labels.v }}"}},
		verifyStep()}})
	call, run := &rem.Steps[0], &rem.Steps[1]
	data := templateData(rem, assertd.Instance{Labels: assertd.Labels{"v": `a/../"q"<b>`}, Values: map[string]float64{"lag_s": 90}}, "r1")

	u, err := render("url", call.URL, data, false)
	want := "https://lb.internal/servers/a%2F..%2F%22q%22%3Cb%3E/A%2F..%2F%22Q%22%3CB%3E?r=%26x%3D%2F..%2F%22q%22%3Cb%3E#A%2F..%2F%22Q%22%3CB%3E"
	if err != nil || u != want {
		t.Fatalf("url %q (%v), want %q", u, err, want)
	}
	body, err := renderBody(call, data)
	var m map[string]string
	if err != nil || jsonUnmarshal(body, &m) != nil || m["s"] != `a/../"q"<b>` || m["b"] != m["s"] || m["h"] != "1m 30s" || m["t"] != "1970-01-01 00:01:30 +0000 UTC" {
		t.Fatalf("body %q (%v): %v", body, err, m)
	}
	if a, err := render("run[1]", run.Run[1], data, false); err != nil || a != `a/../"q"<b>` {
		t.Fatalf("run[1] %q (%v)", a, err)
	}
	if a, err := render("run[2]", run.Run[2], data, false); err == nil || !strings.Contains(err.Error(), `starts with "-" and would be read as an option`) {
		t.Fatalf("run[2] %q (%v), want it refused", a, err)
	}
	data = templateData(rem, assertd.Instance{Labels: assertd.Labels{"v": "db-1\nrm:5432"}}, "r1")
	if a, err := render("run[3]", run.Run[3], data, false); err == nil || !strings.Contains(err.Error(), "control character") {
		t.Fatalf("run[3] %q (%v), want it refused", a, err)
	}
}
