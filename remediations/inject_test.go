package remediations

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/assertd/assertd"
)

// request is what the target received, as it received it.
type request struct {
	uri  string // the raw request URI
	body string
}

// Hostile label values against a real HTTP target and a real child
// process: each is escaped (it arrives as exactly one path segment, one
// query value, one JSON string and one argument) or refused before any
// step ran (nothing reached either target).
func TestInjectedLabelValues(t *testing.T) {
	var mu sync.Mutex
	var got []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, request{r.RequestURI, string(b)})
		mu.Unlock()
	}))
	defer srv.Close()
	argvFile := filepath.Join(t.TempDir(), "argv")
	rem := compileRem(t, Remediation{Name: "fix", Steps: []Step{
		{Name: "call", HTTP: &HTTP{Method: "PUT", URL: srv.URL + "/servers/{{ .Labels.instance }}?reason={{ .Labels.instance }}#{{ .Labels.instance }}",
			Headers: map[string]Value{"Content-Type": {Value: "application/json"}},
			Body:    `{"server": "{{ .Labels.instance }}", "bare": {{ .Labels.instance }}, "ms": {{ .Values.ms }}}`}},
		{Name: "run", Run: []string{helper, "argv", argvFile, "{{ .Labels.instance }}", "--target={{ .Labels.instance }}"}},
		verifyStep()}})

	for _, tc := range []struct {
		value  string
		refuse string // "": delivered escaped; else contained in the refusal
	}{
		{value: "../../admin/shutdown"},
		{value: "2-a?x=1&force=true"},
		{value: "2-b#frag"},
		{value: `3-x", "action": "delete-all", "z": "`},
		{value: "%2e%2e"},
		{value: "a b+c"},
		{value: "-rf", refuse: `step run: run[3]: {{.Labels.instance}} gives "-rf", which starts with "-" and would be read as an option`},
		{value: "--help", refuse: `gives "--help", which starts with "-"`},
		{value: "a\nb", refuse: `gives "a\nb", which holds the control character U+000A`},
		{value: "a\x00b", refuse: `holds the control character U+0000`},
		{value: "a\rb", refuse: `holds the control character U+000D`},
		{value: "..", refuse: `step call: url: {{.Labels.instance}} gives "..", a dot segment`},
		{value: ".", refuse: `gives ".", a dot segment`},
		{value: "", refuse: `step call: url: {{.Labels.instance}} is empty`},
	} {
		t.Run(tc.value, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			os.Remove(argvFile)
			g := newRig(t, rem)
			in := instA
			in.Labels = assertd.Labels{"instance": tc.value}
			res := g.run(t, "fix", in, assertd.ActRemediate, "r1")
			mu.Lock()
			reqs := slices.Clone(got)
			mu.Unlock()
			argv, argvErr := os.ReadFile(argvFile)
			if tc.refuse != "" {
				if res.Verified || !strings.Contains(res.Outcome, "refused before any step ran: ") || !strings.Contains(res.Outcome, tc.refuse) {
					t.Fatalf("outcome %q, want a refusal with %q", res.Outcome, tc.refuse)
				}
				if len(reqs) != 0 || !errors.Is(argvErr, os.ErrNotExist) {
					t.Fatalf("something reached a target: requests %q, argv %q", reqs, argv)
				}
				if n := testutil.ToFloat64(g.r.m.refusals.WithLabelValues(refusedValue)); n != 1 {
					t.Fatalf("assertd_refusals_total{reason=value} = %v, want 1", n)
				}
				return
			}
			if !res.Verified {
				t.Fatalf("outcome %q\n%s", res.Outcome, res.StepLog)
			}
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			// The path: exactly two segments, the second the value.
			u, err := url.ParseRequestURI(reqs[0].uri)
			if err != nil {
				t.Fatal(err)
			}
			segs := strings.Split(u.EscapedPath(), "/")
			if len(segs) != 3 || segs[1] != "servers" {
				t.Fatalf("path %q has another shape", u.EscapedPath())
			}
			if seg, err := url.PathUnescape(segs[2]); err != nil || seg != tc.value {
				t.Fatalf("path segment %q (%v), want %q", seg, err, tc.value)
			}
			// The query: one key, the value.
			q, err := url.ParseQuery(u.RawQuery)
			if err != nil || len(q) != 1 || len(q["reason"]) != 1 || q.Get("reason") != tc.value {
				t.Fatalf("query %q parses to %v (%v)", u.RawQuery, q, err)
			}
			// The body: the same fields, the value in each string.
			var body map[string]any
			dec := json.NewDecoder(strings.NewReader(reqs[0].body))
			if err := dec.Decode(&body); err != nil || dec.More() {
				t.Fatalf("body %q: %v", reqs[0].body, err)
			}
			if len(body) != 3 || body["server"] != tc.value || body["bare"] != tc.value || body["ms"] != 80.0 {
				t.Fatalf("body %q decodes to %v", reqs[0].body, body)
			}
			// The child: exactly two arguments, as given.
			if args := bytes.Split(bytes.TrimSuffix(argv, []byte{0}), []byte{0}); argvErr != nil || len(args) != 2 ||
				string(args[0]) != tc.value || string(args[1]) != "--target="+tc.value {
				t.Fatalf("argv %q (%v)", argv, argvErr)
			}
		})
	}
}
