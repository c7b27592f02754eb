package assertd

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "1h30m": 90 * time.Minute, "1d": 24 * time.Hour, "2w": 14 * 24 * time.Hour, "0s": 0, "250ms": 250 * time.Millisecond} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("%s: %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"15", "-5m", "1x", "", "1.5h"} {
		if _, err := ParseDuration(in); err == nil || !strings.Contains(err.Error(), "such as 30s") {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"api-latency.p99_x": true, "A1": true, "": false, "-x": false, "a b": false, "a/b": false, strings.Repeat("a", 129): false} {
		if err := CheckName("assert", name); (err == nil) != ok {
			t.Errorf("%q: %v", name, err)
		}
	}
}

func TestParseTemplateFields(t *testing.T) {
	fields := TemplateFields{"Labels": nil, "Values": {"p99_ms"}}
	for tmpl, wantErr := range map[string]string{
		"{{ .Labels.anything }} {{ .Values.p99_ms }}":             "",
		"{{ $.Values.p99_ms }}":                                   "",
		"{{ with .Labels }}{{ .whatever }}{{ end }}":              "",
		"{{ range $k, $v := .Labels }}{{ $k }}{{ .x }}{{ end }}":  "",
		"{{ if .Labels.x }}{{ .Nope }}{{ end }}":                  ".Nope, which does not exist",
		"{{ .Values.p99 }}":                                       ".Values.p99, which does not exist (they are p99_ms)",
		"{{ $.Nope }}":                                            ".Nope",
		"{{ humanize .Values.p99_ms | upper }}":                   "",
		"{{ .Labels.x ":                                           "invalid template",
		"{{ nofunc 1 }}":                                          "invalid template",
		"{{ template \"x\" .Labels }}{{ define \"x\" }}{{ end }}": "",
	} {
		_, err := ParseTemplate("t", tmpl, fields)
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%q: %v", tmpl, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%q: got %v, want %q", tmpl, err, wantErr)
		}
	}
}

func TestCompileExprErrors(t *testing.T) {
	env := map[string]any{"x": 0.0}
	for src, want := range map[string]string{
		"x + 1":                          "must be true or false",
		"y > 1":                          "unknown name y",
		"x >":                            "unexpected token EOF",
		`duration("5") > duration("1s")`: `invalid duration "5"`,
	} {
		if _, _, err := CompileExpr(src, env); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
	if _, _, err := CompileExpr(`x > 1 && duration("1h") > duration("30m")`, env); err != nil {
		t.Error(err)
	}
}
