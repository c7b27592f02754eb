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

// Names that do not exist and series that do not parse are errors with
// their position, not passes. (An expectation past the last input sample
// is not: series end there as Prometheus' lookback says.)
func TestBadFileErrorsHavePositions(t *testing.T) {
	_, errs := Load("testdata/bad.test.yaml")
	got := errs.Error()
	for _, want := range []string{
		"testdata/bad.test.yaml:4:5: series 0:",
		`testdata/bad.test.yaml:9:17: unknown heartbeat "demo-jb" (did you mean "demo-job"?)`,
		`testdata/bad.test.yaml:11:12: unknown channel "slak"`,
		`testdata/bad.test.yaml:16:18: unknown assert "demo-conections" (did you mean "demo-connections"?)`,
		`testdata/bad.test.yaml:17:24: unknown channel "pagerduty"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

// The native format's promtool-like checks: evaluations at 0, exact sets,
// firing sets (alerts:), annotations, expressions, start_timestamp, native-histogram input and
// expectations after the last sample pass where they hold (and fail where
// they do not: TestPromtoolLikeChecksFail).
func TestPromtoolLikeChecks(t *testing.T) {
	res, err := RunFile(context.Background(), "testdata/promlike/promlike.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if !Report(&out, res) || len(res) != 5 {
		t.Fatalf("%d results\n%s", len(res), out.String())
	}
}

// The same checks fail, saying what was wanted and what happened, where
// they do not hold.
func TestPromtoolLikeChecksFail(t *testing.T) {
	res, err := RunFile(context.Background(), "testdata/promlike/wrong.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if Report(&out, res) {
		t.Fatal("wrong expectations passed")
	}
	for i, want := range []string{
		"exactly the states listed:\n      want: nothing else other than ok\n      got:  host-up{instance=\"b:9100\", job=\"node\", severity=\"critical\"} escalated",
		"state of host-up{instance=\"b:9100\"}:\n      want: escalated annotations {summary=\"b is down\"}\n      got:  {instance=\"b:9100\", job=\"node\", severity=\"critical\"} escalated annotations {summary=\"b:9100 is down\"}",
		"expr \"up == 0\" at 2m:\n      want: {__name__=\"up\", instance=\"a:9100\", job=\"node\"} 0E+00\n      got:  {__name__=\"up\", instance=\"a:9100\", job=\"node\"} 0E+00, {__name__=\"up\", instance=\"b:9100\", job=\"node\"} 0E+00",
		"firing instances of host-up:\n      want: {instance=\"a:9100\", job=\"node\", severity=\"critical\"} annotations {summary=\"a:9100 is down\"}\n" +
			"      got:  {instance=\"a:9100\", job=\"node\", severity=\"critical\"} annotations {summary=\"a:9100 is down\"}; {instance=\"b:9100\", job=\"node\", severity=\"critical\"} annotations {summary=\"b:9100 is down\"}",
	} {
		if len(res[i].Failures) != 1 || res[i].Failures[0] != want {
			t.Errorf("%s: %q\nwant %q", res[i].Name, res[i].Failures, want)
		}
	}
}
