package strictyaml

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// yamlBreakRE matches a line break as YAML counts them: \r and NEL, LS, PS
// break lines too.
var yamlBreakRE = regexp.MustCompile("\r\n|[\r\n\u0085\u2028\u2029]")

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
		lines := len(yamlBreakRE.FindAllStringIndex(string(data), -1)) + 1
		for _, e := range errs {
			if e.Pos.File != "f.yaml" || e.Pos.Line < 1 || e.Pos.Line > lines || e.Pos.Col < 1 || e.Msg == "" {
				t.Fatalf("error outside the file (%d lines): %#v", lines, e)
			}
		}
	})
}
