package strictyaml

import (
	"strings"
	"testing"
)

type inner struct {
	Name  string            `yaml:"name"`
	Count int               `yaml:"count"`
	On    bool              `yaml:"on"`
	Ratio float64           `yaml:"ratio"`
	Tags  []string          `yaml:"tags"`
	Map   map[string]string `yaml:"map"`
	Ptr   *inner            `yaml:"ptr"`
	Any   any               `yaml:"any"`
	Skip  string            `yaml:"-"`
}

func (*inner) KeyHints() map[string]string { return map[string]string{"title": "write name:"} }

type doc struct {
	Items []inner `yaml:"items"`
	One   inner   `yaml:"one"`
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // "line:col: substring"
	}{
		{"ok", "items: [{name: a, count: 2, on: true, ratio: 0.5, tags: [x], map: {k: v}}]", nil},
		{"unknown key with suggestion", "one: {nmae: a}", []string{`1:7: unknown key "nmae" (did you mean "name"?)`}},
		{"unknown key with hint", "one:\n  title: a", []string{`2:3: unknown key "title": write name:`}},
		{"unknown key lists keys", "one: {zzzzzz: a}", []string{`1:7: unknown key "zzzzzz"; the keys here are: any, count, map, name, on, ptr, ratio, tags`}},
		{"x- keys are ignored", "x-anchor: &a {name: n}\none: *a", nil},
		{"duplicate key", "one:\n  name: a\n  name: b", []string{`3:3: duplicate key "name" (first set at line 2)`}},
		{"wrong kinds", "one: {count: x, on: yes, ratio: r, tags: a, map: [1], name: [1]}", []string{
			`1:14: expected a whole number, got "x"`,
			`1:21: expected true or false, got "yes"`,
			`1:33: expected a number, got "r"`,
			`1:42: expected a list, got "a"`,
			`1:50: expected a mapping (key: value), got a list`,
			`1:61: expected a string, got a list`,
		}},
		{"all errors of several items", "items:\n  - {count: a}\n  - {cout: 1}\n  - {count: 1.5}", []string{
			`2:13: expected a whole number`, `3:6: unknown key "cout" (did you mean "count"?)`, `4:13: expected a whole number, got "1.5"`,
		}},
		{"syntax error", "one:\n  name: a\n   bad: b", []string{`3:4: invalid YAML: this line is indented deeper than line 2, so it reads as the rest of that line's value: align it with name (column 3)`}},
		{"tab indentation", "one:\n\tname: a", []string{`2:1: invalid YAML: this line is indented with a tab`}},
		{"unquoted template", "one:\n  name: {{ .Name }}", []string{`2:9: expected a string, got a mapping: a value starting with {{ is read as a YAML mapping; quote the whole value`}},
		{"no space after the colon", "one:\n  ptr: name:a", []string{`2:8: expected a mapping (key: value), got "name:a": a space is missing after ':'; write name: a`}},
		{"two documents", "one: {name: a}\n---\none: {name: b}", []string{`2:1: a second YAML document`}},
		{"top level not a mapping", "- a", []string{`1:1: expected a mapping (key: value), got a list`}},
		{"merge keys: explicit wins", "x-base: &b {name: base, count: 1}\none:\n  <<: *b\n  name: own", nil},
		{"merge of a non-mapping", "one:\n  <<: [1]", []string{`2:3: merge key << takes one mapping`}},
		{"non-string key", "one: {[a]: 1}", []string{`1:7: a key must be a plain string`}},
		{"empty document", "", nil},
		{"null sections", "one:\nitems:", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d doc
			_, errs := Decode("f.yaml", []byte(tc.in), &d)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tc.want), errs)
			}
			for i, w := range tc.want {
				pos, msg, _ := strings.Cut(w, ": ")
				got := errs[i].Error()
				if !strings.HasPrefix(got, "f.yaml:"+pos+": ") || !strings.Contains(got, msg) {
					t.Errorf("error %d = %q, want at %s containing %q", i, got, pos, msg)
				}
			}
		})
	}
}

func TestDecodeValues(t *testing.T) {
	var d doc
	pos, errs := Decode("f.yaml", []byte("x-b: &b {count: 7, tags: [t]}\none:\n  <<: *b\n  name: n\n  ptr: {name: p}\n  map: {a: '1'}\n"), &d)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if d.One.Name != "n" || d.One.Count != 7 || d.One.Tags[0] != "t" || d.One.Ptr.Name != "p" || d.One.Map["a"] != "1" {
		t.Fatalf("decoded %+v", d.One)
	}
	if p := pos.Of("one", "ptr", "name"); p.Line != 5 || p.Col != 15 {
		t.Errorf("position of one.ptr.name = %v", p)
	}
	// An absent key is placed where it belongs: its parent.
	if p := pos.Of("one", "ratio"); p.Line != 3 {
		t.Errorf("position of absent one.ratio = %v", p)
	}
	if !pos.Has("one", "name") || pos.Has("one", "ratio") {
		t.Error("Has")
	}
}

// A value that failed to decode is not "set": checks of set values must not
// report it a second time.
func TestHasSkipsBadValues(t *testing.T) {
	var d doc
	pos, errs := Decode("f.yaml", []byte("one: {count: x}"), &d)
	if len(errs) != 1 || pos.Has("one", "count") {
		t.Fatalf("errs %v, has %v", errs, pos.Has("one", "count"))
	}
}

func TestAliasBombIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("x-a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	b.WriteString("one:\n  any: *a8\n")
	var d doc
	_, errs := Decode("f.yaml", []byte(b.String()), &d)
	if len(errs) == 0 || !strings.Contains(errs.Error(), "alias") {
		t.Fatalf("alias bomb decoded without error: %v", errs)
	}
}

func TestSizeLimit(t *testing.T) {
	var d doc
	_, errs := Decode("f.yaml", make([]byte, MaxBytes+1), &d)
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, "split it") {
		t.Fatal(errs)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"for", "every", "expect", "escalate", "remediate", "no_data"}
	for word, want := range map[string]string{
		"fro": "for", "For": "for", "evry": "every", "expcet": "expect", "remedy": "", "remediation": "remediate",
		"nodata": "no_data", "escalation": "", "zzz": "", "exp": "expect",
	} {
		if got := Suggest(word, keys); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", word, got, want)
		}
	}
}

func TestErrorsSortAndDedupe(t *testing.T) {
	var es Errors
	es.Add(Pos{File: "b", Line: 1, Col: 1}, "x")
	es.Add(Pos{File: "a", Line: 2, Col: 1}, "y")
	es.Add(Pos{File: "a", Line: 1, Col: 5}, "z")
	es.Add(Pos{File: "a", Line: 1, Col: 5}, "z")
	got := es.Sort().Error()
	if got != "a:1:5: z\na:2:1: y\nb:1:1: x" {
		t.Fatalf("%q", got)
	}
}
