package strictyaml

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// TestSyntaxGolden parses every testdata/syntax/*.yaml and compares the
// syntax errors, one file:line:col: message per line, with the .golden file
// beside it (go test ./internal/strictyaml -update rewrites them).
func TestSyntaxGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/syntax/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/syntax/*.yaml")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			doc, errs := Parse(f, data)
			if doc != nil || len(errs) == 0 {
				t.Fatalf("parsed without a syntax error: %v", errs)
			}
			var got bytes.Buffer
			for _, e := range errs {
				if e.Pos.File != f || e.Pos.Line < 1 || e.Pos.Col < 1 {
					t.Errorf("error without file:line:col: %#v", e)
				}
				got.WriteString(e.Error() + "\n")
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test ./internal/strictyaml -update creates it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("errors differ from %s (go test ./internal/strictyaml -update rewrites it)\n--- got\n%s--- want\n%s", golden, got.Bytes(), want)
			}
		})
	}
}

// A valid document with the characters the diagnosis looks for parses.
func TestSyntaxValid(t *testing.T) {
	for _, in := range []string{
		"a: \"x: y\"\nb: '{{ .Name }}'\nc: [a, b]\nd: {x: 1}\n",
		"a: |\n  \"not closed\n  {{ x }}\n  \tb: c\n",
		"a: \"two\n  lines\"\nb: 1\n",
		"a: x:y\n",
	} {
		if _, errs := Parse("f.yaml", []byte(in)); len(errs) > 0 {
			t.Errorf("%q: %v", in, errs)
		}
	}
}
