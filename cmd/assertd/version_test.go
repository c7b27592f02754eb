package main

import (
	"encoding/json"
	"runtime"
	"testing"

	"github.com/assertd/assertd"
)

// assertd version prints the stamped version, the revision and the Go
// version, as text and as JSON.
func TestVersion(t *testing.T) {
	saved := [2]string{assertd.Version, assertd.Revision}
	assertd.Version, assertd.Revision = "v1.2.3", "0123456789abcdef"
	t.Cleanup(func() { assertd.Version, assertd.Revision = saved[0], saved[1] })

	code, out, _ := runCLI("version")
	want := "assertd, version v1.2.3 (revision: 0123456789abcdef)\n  go version: " + runtime.Version() + "\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d\n%q\nwant\n%q", code, out, want)
	}
	code, out, _ = runCLI("version", "-o", "json")
	var got map[string]string
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("exit %d %v: %s", code, err, out)
	}
	if got["version"] != "v1.2.3" || got["revision"] != "0123456789abcdef" || got["goversion"] != runtime.Version() || len(got) != 3 {
		t.Fatalf("json %v", got)
	}
}
