package strictyaml

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: no input makes the parser or the syntax diagnosis panic, and
// every error points into the file.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/syntax/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: \"x\\\"\nb: [\n"))
	f.Add([]byte("\t- {{\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, errs := Parse("f.yaml", data)
		lines := strings.Count(string(data), "\n") + 1
		for _, e := range errs {
			if e.Pos.File != "f.yaml" || e.Pos.Line < 1 || e.Pos.Line > lines || e.Pos.Col < 1 || e.Msg == "" {
				t.Fatalf("error outside the file (%d lines): %#v", lines, e)
			}
		}
	})
}
