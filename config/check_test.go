package config

import (
	"bytes"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// golden compares got with the file, or rewrites the file with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./config -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test ./config -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

var wantRE = regexp.MustCompile(`# want((?: "(?:[^"\\]|\\.)*")+)`)
var wantArgRE = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)

// wants reads the `# want "substring" ...` annotations of a file by line.
func wants(t *testing.T, path string) map[int][]string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]string{}
	for i, line := range strings.Split(string(data), "\n") {
		m := wantRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, a := range wantArgRE.FindAllStringSubmatch(m[1], -1) {
			s, err := strconv.Unquote(`"` + a[1] + `"`)
			if err != nil {
				t.Fatalf("%s:%d: bad want: %v", path, i+1, err)
			}
			out[i+1] = append(out[i+1], s)
		}
	}
	return out
}

// TestBadFiles checks every testdata/*.bad.yaml: each error must be wanted by
// an annotation on its line, each annotation must be met by an error on its
// line, and the whole output must match the golden file.
func TestBadFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/*.bad.yaml")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			rep := Check("", false, []string{f})
			if rep.OK() {
				t.Fatal("no errors reported")
			}
			want := wants(t, f)
			met := map[string]bool{}
			for _, e := range rep.Errors {
				if e.Pos.File != f {
					t.Errorf("error in another file: %v", e)
					continue
				}
				if e.Pos.Line == 0 || e.Pos.Col == 0 {
					t.Errorf("error without line:col: %v", e)
				}
				ok := false
				for _, w := range want[e.Pos.Line] {
					if strings.Contains(e.Msg, w) {
						ok, met[fmt.Sprint(e.Pos.Line, w)] = true, true
					}
				}
				if !ok {
					t.Errorf("unexpected error %v (wanted on that line: %q)", e, want[e.Pos.Line])
				}
			}
			for line, ws := range want {
				for _, w := range ws {
					if !met[fmt.Sprint(line, w)] {
						t.Errorf("%s:%d: no error containing %q", f, line, w)
					}
				}
			}
			var out bytes.Buffer
			rep.WriteText(&out, &out)
			golden(t, strings.TrimSuffix(f, ".yaml")+".golden", out.Bytes())
		})
	}
}

func TestGoodFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/*.good.yaml")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			rep := Check("", false, []string{f})
			for _, e := range rep.Errors {
				t.Error(e)
			}
			if rep.Asserts+rep.Remediations+rep.Heartbeats == 0 {
				t.Error("nothing loaded")
			}
		})
	}
}

// A file with five different mistakes yields five lines, one per mistake.
func TestFiveMistakesFiveLines(t *testing.T) {
	rep := Check("", false, []string{"testdata/five.bad.yaml"})
	var out, summary bytes.Buffer
	rep.WriteText(&out, &summary)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("got %d lines, want 5:\n%s", len(lines), out.String())
	}
	lineRE := regexp.MustCompile(`^testdata/five\.bad\.yaml:\d+:\d+: `)
	for _, l := range lines {
		if !lineRE.MatchString(l) {
			t.Errorf("line %q is not path:line:col: message", l)
		}
	}
	if !strings.HasPrefix(summary.String(), "5 errors") {
		t.Errorf("summary %q", summary.String())
	}
}

func TestExamplesCheckClean(t *testing.T) {
	rep := Check("", false, []string{"../examples/..."})
	for _, e := range rep.Errors {
		t.Error(e)
	}
	for _, w := range rep.Warnings {
		t.Errorf("warning: %v", w)
	}
	if rep.Asserts < 8 || rep.Remediations < 6 || rep.Heartbeats < 1 {
		t.Errorf("examples hold %d asserts, %d remediations, %d heartbeats; expected the web and database sets", rep.Asserts, rep.Remediations, rep.Heartbeats)
	}
	// Every example set loads with its own config, so that escalation
	// policies and sources are checked too.
	configs, _ := filepath.Glob("../examples/*/assertd.yaml")
	if len(configs) < 2 {
		t.Fatalf("example configs: %v", configs)
	}
	for _, c := range configs {
		set, errs := Load(c)
		if len(errs) > 0 {
			t.Errorf("%s: %v", c, errs)
		}
		if set.Config == nil || len(set.Asserts) == 0 {
			t.Errorf("%s: loaded nothing", c)
		}
	}
}

func TestCheckJSON(t *testing.T) {
	rep := Check("", false, []string{"testdata/five.bad.yaml"})
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		OK     bool `json:"ok"`
		Errors []struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Col     int    `json:"col"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.OK || len(got.Errors) != 5 || !strings.Contains(buf.String(), `"warnings": []`) || got.Errors[0].Line != 4 || got.Errors[0].Col != 12 || got.Errors[0].File != "testdata/five.bad.yaml" {
		t.Errorf("json report: %+v", got)
	}
}

// With -c, the given rule files are checked against that config's policies.
func TestCheckAgainstConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write("assertd.yaml", "files: [none.yaml]\nnotifiers: [{name: c, console: {}}]\nescalation_policies: [{name: ops, levels: [{notify: [c]}]}]\n")
	write("none.yaml", "asserts: [{name: x, query: {u: up}, expect: u == 1, escalate: ops}]\n")
	rules := write("rules.yaml", "asserts:\n  - name: a\n    query: {u: up}\n    expect: u == 1\n    escalate: opps\n")
	rep := Check(cfg, true, []string{rules})
	if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0].Msg, `unknown escalation policy "opps" (did you mean "ops"?)`) || rep.Errors[0].Pos.Line != 5 {
		t.Fatalf("errors: %v", rep.Errors)
	}
	// Without a config the policy cannot be checked, and is not.
	if rep := Check("", false, []string{rules}); !rep.OK() {
		t.Fatalf("standalone: %v", rep.Errors)
	}
	// With no paths, the config and the files it lists.
	if rep := Check(cfg, true, nil); !rep.OK() || rep.Asserts != 1 {
		t.Fatalf("config alone: %+v", rep)
	}
	// A missing default config says what to do.
	if rep := Check(filepath.Join(dir, "nope", "assertd.yaml"), false, nil); rep.OK() || !strings.Contains(rep.Errors[0].Msg, "-c") {
		t.Fatalf("missing config: %v", rep.Errors)
	}
}

func TestDuplicatesAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	b := filepath.Join(dir, "b.yaml")
	os.WriteFile(a, []byte("asserts:\n  - name: same\n    query: {u: up}\n    expect: u == 1\n"), 0o644)
	os.WriteFile(b, []byte("heartbeats: [{name: hb, period: 1h}]\nasserts:\n  - name: same\n    query: {u: up}\n    expect: u == 1\n"), 0o644)
	rep := Check("", false, []string{dir})
	if len(rep.Errors) != 1 {
		t.Fatalf("errors: %v", rep.Errors)
	}
	e := rep.Errors[0]
	if e.Pos.File != b || e.Pos.Line != 3 || !strings.Contains(e.Msg, `duplicate assert name "same" (first defined at `+a+":2:5)") {
		t.Fatalf("error: %v", e)
	}
}

// A config that is not valid YAML yields its syntax errors, and none of what
// an empty config would lack (no files:, no notifiers).
func TestConfigSyntaxErrorsOnly(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "assertd.yaml")
	if err := os.WriteFile(cfg, []byte("files: [rules.yaml]\nnotifiers:\n  - name: c\n    console: {}\n   extra: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := Check(cfg, true, nil)
	if len(rep.Errors) != 1 {
		t.Fatalf("errors: %v", rep.Errors)
	}
	if e := rep.Errors[0]; e.Pos.Line != 5 || e.Pos.Col != 4 || !strings.Contains(e.Msg, "invalid YAML: this line (column 4) is indented less than console") {
		t.Fatalf("error: %v", e)
	}
	if len(rep.Files) != 1 || rep.Files[0] != cfg {
		t.Fatalf("files: %v", rep.Files)
	}
}

// A heartbeat that anyone could ping is refused at check, at its position,
// unless it has a key or a uuid, the project has a ping key, or it says
// public: true.
func TestHeartbeatWithoutKeyRefused(t *testing.T) {
	const base = "files: [rules.yaml]\nnotifiers: [{name: c, console: {}}]\nescalation_policies: [{name: ops, levels: [{notify: [c]}]}]\ndefaults: {escalate: ops}\n"
	for _, tc := range []struct {
		name, cfg, rules, want string
	}{
		{"no key", "", "heartbeats:\n  - name: open\n    period: 1h\n", `rules.yaml:2:5: heartbeat "open" takes pings from anyone who reaches the listener`},
		{"UUID name", "", "heartbeats:\n  - {name: 0b7d2f4e-9c1a-4f5e-8d3b-2a6c9e1f7b40, period: 1h}\n", "a UUID as the name is no secret"},
		{"uuid shared", "", "heartbeats:\n  - {name: a, period: 1h, uuid: 0b7d2f4e-9c1a-4f5e-8d3b-2a6c9e1f7b40}\n  - {name: b, period: 1h, uuid: 0B7D2F4E-9C1A-4F5E-8D3B-2A6C9E1F7B40}\n", `rules.yaml:3:5: heartbeat "b" has the uuid of the heartbeat at`},
		{"both project key settings", "pings: {key_env: A, key_file: b}\n", "heartbeats:\n  - {name: a, period: 1h}\n", "assertd.yaml:5:31: set key_env or key_file, not both"},
		{"own key", "", "heartbeats:\n  - {name: a, period: 1h, key_env: A_KEY}\n", ""},
		{"uuid", "", "heartbeats:\n  - {name: a, period: 1h, uuid: 0b7d2f4e-9c1a-4f5e-8d3b-2a6c9e1f7b40}\n", ""},
		{"public", "", "heartbeats:\n  - {name: a, period: 1h, public: true}\n", ""},
		{"project key", "pings: {key_env: ASSERTD_PING_KEY}\n", "heartbeats:\n  - {name: a, period: 1h}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "assertd.yaml")
			os.WriteFile(cfg, []byte(base+tc.cfg), 0o644)
			os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(tc.rules+"asserts:\n  - {name: x, expect: 'heartbeat(\"a\").up || true', no_data: ok}\n"), 0o644)
			_, errs := Load(cfg)
			var msgs []string
			for _, e := range errs {
				if !strings.Contains(e.Msg, `unknown heartbeat "a"`) {
					msgs = append(msgs, e.Error())
				}
			}
			got := strings.Join(msgs, "\n")
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("errors:\n%s\nwant %q", got, tc.want)
			}
		})
	}
}

// A create: pattern needs the project ping key, which its pings carry.
func TestCreateNeedsTheProjectKey(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "assertd.yaml")
	os.WriteFile(cfg, []byte("files: [rules.yaml]\nnotifiers: [{name: c, console: {}}]\nescalation_policies: [{name: ops, levels: [{notify: [c]}]}]\ndefaults: {escalate: ops}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("heartbeats:\n  - {name: backup, period: 1d, create: {prefix: backup-, max: 5}}\n"), 0o644)
	_, errs := Load(cfg)
	if len(errs) != 1 || errs[0].Pos.Line != 2 || !strings.Contains(errs[0].Msg, "create: takes pings with the project ping key only") {
		t.Fatalf("errors: %v", errs)
	}
	os.WriteFile(cfg, []byte("files: [rules.yaml]\npings: {key_file: ping.key}\nnotifiers: [{name: c, console: {}}]\nescalation_policies: [{name: ops, levels: [{notify: [c]}]}]\ndefaults: {escalate: ops}\n"), 0o644)
	if _, errs := Load(cfg); len(errs) != 0 {
		t.Fatalf("errors with the project key: %v", errs)
	}
}

// A label that reaches an argv without an allow pattern is a warning:
// printed with its position, counted in the summary, and the check passes.
func TestWarningsDoNotFail(t *testing.T) {
	f := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(f, []byte("asserts: [{name: a, query: {u: up}, expect: u == 1, remediate: r}]\n"+
		"remediations:\n  - name: r\n    steps:\n      - {name: s, run: [systemctl, restart, \"{{ .Labels.instance }}\"]}\n      - {name: v, verify: a}\n"), 0o644)
	rep := Check("", false, []string{f})
	var out, summary bytes.Buffer
	rep.WriteText(&out, &summary)
	if !rep.OK() || len(rep.Warnings) != 1 {
		t.Fatalf("errors %v, warnings %v", rep.Errors, rep.Warnings)
	}
	if want := f + ":5:45: warning: step s: run[2] uses .Labels.instance, which has no allow pattern"; !strings.HasPrefix(out.String(), want) {
		t.Fatalf("output %q, want it to start with %q", out.String(), want)
	}
	if !strings.HasPrefix(summary.String(), "ok: ") || !strings.Contains(summary.String(), ", 1 warning\n") {
		t.Fatalf("summary %q", summary.String())
	}
}

// max_instances: the assert's own, else defaults.max_instances, else 10000.
func TestMaxInstancesDefaults(t *testing.T) {
	dir := t.TempDir()
	rules := "asserts:\n  - {name: own, query: {u: up}, expect: u == 1, max_instances: 3}\n  - {name: dflt, query: {u: up}, expect: u == 1}\n"
	os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o644)
	for _, tc := range []struct {
		defaults  string
		own, dflt int
	}{
		{"", 3, 10000},
		{"defaults: {max_instances: 7}\n", 3, 7},
	} {
		cfg := filepath.Join(dir, "assertd.yaml")
		os.WriteFile(cfg, []byte("files: [rules.yaml]\nnotifiers: [{name: c, console: {}}]\nescalation_policies: [{name: ops, levels: [{notify: [c]}]}]\n"+
			strings.Replace(cmp.Or(tc.defaults, "defaults: {}\n"), "{", "{escalate: ops, ", 1)), 0o644)
		set, errs := Load(cfg)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if own, dflt := set.Assert("own").MaxInstances, set.Assert("dflt").MaxInstances; own != tc.own || dflt != tc.dflt {
			t.Fatalf("%q: max_instances %d and %d, want %d and %d", tc.defaults, own, dflt, tc.own, tc.dflt)
		}
	}
}

// A listen address beyond loopback without tokens is an error that says
// what to write instead; with a token, or on loopback, it is not.
func TestListenBeyondLoopbackNeedsTokens(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		web  string
		want string
	}{
		{"web: {listen: 0.0.0.0:8080}", `assertd.yaml:2:15: listen 0.0.0.0:8080 is not a loopback address and web.tokens is empty`},
		{"web: {listen: ':9000'}", `write listen: 127.0.0.1:9000`},
		{"web: {listen: '[::1]:8080'}", ""},
		{"web: {listen: localhost:8080}", ""},
		{"web: {listen: 0.0.0.0:8080, tokens: [{name: a, role: admin, token_env: A}]}", ""},
	} {
		p := filepath.Join(dir, "assertd.yaml")
		if err := os.WriteFile(p, []byte("files: []\n"+tc.web+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, errs := LoadConfig(p)
		var listen []string
		for _, e := range errs {
			if strings.Contains(e.Msg, "loopback") {
				listen = append(listen, e.Error())
			}
		}
		switch {
		case tc.want == "" && len(listen) > 0:
			t.Errorf("%s: %v", tc.web, listen)
		case tc.want != "" && (len(listen) != 1 || !strings.Contains(listen[0], tc.want)):
			t.Errorf("%s: %v, want %q", tc.web, listen, tc.want)
		}
	}
}
