package config

import (
	"os"
	"path/filepath"
	"testing"
)

func seeds(f *testing.F, patterns ...string) {
	for _, p := range patterns {
		files, _ := filepath.Glob(p)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("asserts: [{name: a, expect: '1 <'}]"))
	f.Add([]byte("a: &a [*a, *a]\nb: *a"))
	f.Add([]byte("remediations: [{name: r, steps: [{name: s, run: ['{{'], on_failure: s}]}]"))
}

// FuzzParseRules: no input makes the rule loader panic, and every problem it
// reports has a position.
func FuzzParseRules(f *testing.F) {
	seeds(f, "testdata/*.yaml", "../examples/*/*.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, errs := ParseRules("fuzz.yaml", data)
		for _, e := range errs {
			if e.Pos.File != "fuzz.yaml" || e.Pos.Line < 1 || e.Msg == "" {
				t.Fatalf("error without a position: %#v", e)
			}
		}
	})
}

// FuzzParseConfig: the same for assertd.yaml.
func FuzzParseConfig(f *testing.F) {
	seeds(f, "testdata/config.bad.yaml", "../examples/*/assertd.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, errs := ParseConfig("assertd.yaml", data)
		for _, e := range errs {
			if e.Pos.File != "assertd.yaml" || e.Pos.Line < 1 || e.Msg == "" {
				t.Fatalf("error without a position: %#v", e)
			}
		}
	})
}
