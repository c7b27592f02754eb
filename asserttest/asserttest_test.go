package asserttest

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// Every example ships its tests, and they pass.
func TestExamplesPass(t *testing.T) {
	files, _ := filepath.Glob("../examples/*/*.test.yaml")
	if len(files) < 4 {
		t.Fatalf("example tests: %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			res, err := RunFile(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if !Report(&out, res) || len(res) == 0 {
				t.Fatalf("%s", out.String())
			}
		})
	}
}

// A wrong expectation fails, with what was wanted and what happened.
func TestWrongExpectationFailsReadably(t *testing.T) {
	res, err := RunFile(context.Background(), "testdata/wrong.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if Report(&out, res) {
		t.Fatal("a wrong expectation passed")
	}
	for _, want := range []string{
		"--- FAIL: a deliberately wrong expectation",
		"state of demo-connections{instance=\"demo-1\"}:\n      want: violated\n      got:  {instance=\"demo-1\", job=\"demo\", severity=\"page\", team=\"demo\"} ok",
		"pages on console:\n      want: 3\n      got:  0",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	var x bytes.Buffer
	if err := JUnit(&x, res); err != nil || !strings.Contains(x.String(), `failures="1"`) {
		t.Errorf("junit: %v\n%s", err, x.String())
	}
}

// Names that do not exist, series that do not parse and expectations that
// could never be checked are errors with their position, not passes.
func TestBadFileErrorsHavePositions(t *testing.T) {
	_, errs := Load("testdata/bad.test.yaml")
	got := errs.Error()
	for _, want := range []string{
		"testdata/bad.test.yaml:4:5: series 0:",
		`testdata/bad.test.yaml:9:17: unknown heartbeat "demo-jb" (did you mean "demo-job"?)`,
		`testdata/bad.test.yaml:11:12: unknown channel "slak"`,
		"testdata/bad.test.yaml:14:9: at 10m is beyond the input series (they end at 50s)",
		`testdata/bad.test.yaml:16:18: unknown assert "demo-conections" (did you mean "demo-connections"?)`,
		`testdata/bad.test.yaml:17:24: unknown channel "pagerduty"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}
