package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// parsedTopKeys is what a full parse says the top-level keys are; false
// when the document does not parse (the scan may then name the keys it
// read, so that the loader reports the file's errors as its kind's).
func parsedTopKeys(data []byte) ([]string, bool) {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return nil, false
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, true
	}
	var keys []string
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		keys = append(keys, top.Content[i].Value)
	}
	return keys, true
}

// The line scan gives the keys a full parse gives, on every YAML file of
// the repository and on documents it must hand to the parser.
func TestYAMLTopKeysLikeAParse(t *testing.T) {
	var files []string
	for _, glob := range []string{"testdata/*.yaml", "../examples/*/*.yaml", "../examples/*/*.yml", "../asserttest/testdata/*.yaml",
		"../asserttest/promunit/testdata/*/*.yml", "../asserttest/promunit/testdata/*/*.yaml"} {
		m, _ := filepath.Glob(glob)
		files = append(files, m...)
	}
	if len(files) < 20 {
		t.Fatalf("only %d files", len(files))
	}
	docs := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[f] = data
	}
	for name, d := range map[string]string{
		"flow":              "{groups: [], files: [a]}\n",
		"quoted":            "\"groups\": []\nfiles: [a]\n",
		"comments":          "# groups:\nfiles: [a] # groups:\n  # x\n",
		"two documents":     "a: 1\n---\ngroups: []\n",
		"document start":    "---\ngroups: []\n",
		"anchor":            "a: &x 1\nb: *x\n",
		"colon in key":      "a:b: 1\nc: 2\n",
		"url value":         "url: http://x:9090/y\n",
		"sequence":          "- a\n- b\n",
		"scalar":            "hello\n",
		"block scalar":      "a: |\n  groups: []\nb: 1\n",
		"crlf":              "groups: []\r\nfiles: []\r\n",
		"tab":               "a:\n\tb: 1\n",
		"empty":             "",
		"complex key":       "? a\n: 1\n",
		"single quoted":     "'groups': []\n",
		"trailing no eol":   "a: 1\ngroups:",
		"dash key":          "data-dir: x\n",
		"only comments":     "# nothing\n",
		"key without space": "a:1\n",
	} {
		docs[name] = []byte(d)
	}
	parsed := 0
	for name, data := range docs {
		want, ok := parsedTopKeys(data)
		if !ok {
			continue
		}
		parsed++
		if got := yamlTopKeys(data); !slices.Equal(got, want) {
			t.Errorf("%s: %q, a parse says %q", name, got, want)
		}
	}
	if parsed < 40 {
		t.Fatalf("only %d documents parse", parsed)
	}
}

func FuzzYAMLTopKeys(f *testing.F) {
	for _, s := range []string{"groups: []\n", "a: 1\nb:\n  c: 2\n", "{a: 1}", "\"a\": 1\n", "a:b: 1\n", "---\na: 1\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, ok := parsedTopKeys(data)
		if got := yamlTopKeys(data); ok && !slices.Equal(got, want) {
			t.Errorf("%q: %q, a parse says %q", data, got, want)
		}
	})
}
