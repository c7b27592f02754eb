package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckExamples(t *testing.T) {
	code, out, errs := runCLI("check", "../../examples/...")
	if code != 0 || out != "" || !strings.HasPrefix(errs, "ok: ") {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errs)
	}
}

func TestCheckFiveMistakes(t *testing.T) {
	code, out, errs := runCLI("check", "../../config/testdata/five.bad.yaml")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 1 || len(lines) != 5 || !strings.HasPrefix(errs, "5 errors") {
		t.Fatalf("exit %d, %d lines\n%s\n%s", code, len(lines), out, errs)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "../../config/testdata/five.bad.yaml:") {
			t.Errorf("line %q", l)
		}
	}
	code, out, _ = runCLI("check", "-o", "json", "../../config/testdata/five.bad.yaml")
	var rep struct {
		OK     bool              `json:"ok"`
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.OK || len(rep.Errors) != 5 {
		t.Fatalf("json: exit %d, %v, %s", code, err, out)
	}
}

func TestCheckWithConfig(t *testing.T) {
	code, _, errs := runCLI("check", "-c", "../../examples/web/assertd.yaml")
	if code != 0 || !strings.Contains(errs, "4 asserts") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

func TestOtherCommands(t *testing.T) {
	if code, out, _ := runCLI("version"); code != 0 || !strings.HasPrefix(out, "assertd, version ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errs := runCLI("demo", "fault", "latency", "--service", "127.0.0.1:1"); code != 1 || !strings.Contains(errs, "is assertd demo running?") {
		t.Errorf("demo fault without a demo: %d %q", code, errs)
	}
	if code, _, errs := runCLI("chek"); code != 2 || !strings.Contains(errs, "unexpected argument chek") {
		t.Errorf("unknown command: %d %q", code, errs)
	}
	if code, out, _ := runCLI("schema", "rules"); code != 0 || !strings.Contains(out, `"$id": "https://assertd.dev/schema/rules.schema.json"`) {
		t.Errorf("schema: %d", code)
	}
	if code, out, _ := runCLI("--help"); code != 0 || !strings.Contains(out, "check") {
		t.Errorf("help: %d %q", code, out)
	}
}
