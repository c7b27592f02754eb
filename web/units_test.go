package web

import (
	"html/template"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
)

func TestParseMatchers(t *testing.T) {
	good := map[string]string{
		`{instance="db1"}`:                    `{instance="db1"}`,
		`instance="db1", env=~"prod|staging"`: `{instance="db1", env=~"prod|staging"}`,
		`{ a != "x" , b!~"y.*" }`:             `{a!="x", b!~"y.*"}`,
		`{path="C:\\dir", q="say \"hi\""}`:    `{path="C:\\dir", q="say \"hi\""}`,
		`{}`:                                  `{}`,
	}
	for in, want := range good {
		ms, err := ParseMatchers(in)
		if err != nil || matchersString(ms) != want {
			t.Errorf("%s: %s %v", in, matchersString(ms), err)
		}
	}
	bad := map[string]string{
		`{instance="db1"`:   "must close",
		`{="x"}`:            "label name",
		`{a~"x"}`:           "expected =",
		`{a=x}`:             "double-quoted",
		`{a="x" b="y"}`:     "comma",
		`{a="x",}`:          "end with a comma",
		`{a=~"("}`:          "regular expression",
		`{a="unterminated}`: "quoted string",
	}
	for in, want := range bad {
		if _, err := ParseMatchers(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
	ls, err := ParseLabels(`{instance="db3", cluster="reports"}`)
	if err != nil || ls["instance"] != "db3" || len(ls) != 2 {
		t.Errorf("labels %v %v", ls, err)
	}
	if _, err := ParseLabels(`{instance=~"db3"}`); err == nil {
		t.Error("a regexp in a label set")
	}
}

func TestResolveExpr(t *testing.T) {
	parts := resolveExpr(`p99_ms < 50 && labels.p99_ms != "p99_ms" || x > 1`, map[string]float64{"p99_ms": 73.25, "x": 2})
	var b strings.Builder
	for _, p := range parts {
		if p.Name {
			b.WriteString("[" + p.Text + "=" + p.Value + "]")
		} else {
			b.WriteString(p.Text)
		}
	}
	if got := b.String(); got != `[p99_ms=73.25] < 50 && labels.p99_ms != "p99_ms" || [x=2] > 1` {
		t.Errorf("%s", got)
	}
}

func TestTimeline(t *testing.T) {
	now := start0.Add(time.Hour)
	in := assertd.Instance{Assert: "a", State: assertd.Escalated, Since: now.Add(-10 * time.Minute), Values: map[string]float64{"free": 3}}
	trs := []assertd.Transition{ // newest first
		{From: assertd.Violated, To: assertd.Escalated, At: now.Add(-10 * time.Minute), Values: map[string]float64{"free": 4}, Reason: `<b>paged</b>`},
		{From: assertd.OK, To: assertd.Violated, At: now.Add(-20 * time.Minute), Values: map[string]float64{"free": 9}},
	}
	segs := segments(in, trs, now.Add(-30*time.Minute), now)
	if len(segs) != 3 || segs[0].state != assertd.OK || segs[1].state != assertd.Violated || segs[2].state != assertd.Escalated || !segs[2].to.Equal(now) {
		t.Fatalf("segments %+v", segs)
	}
	svg := string(timeline(in, trs, now, 600, true))
	for _, want := range []string{`class="seg st-ok"`, `class="seg st-escalated"`, `<polyline class="val"`, `free = 3`, `&lt;b&gt;paged&lt;/b&gt;`} {
		if !strings.Contains(svg, want) {
			t.Errorf("no %s in %s", want, svg)
		}
	}
	if strings.Contains(svg, "<b>") {
		t.Error("unescaped reason")
	}
	_ = template.HTML("")
}

// TestPagesRender: every page answers 200 to a read token, with the number
// of problems in the title.
func TestPagesRender(t *testing.T) {
	e := newEnv(t)
	e.seed()
	db3 := e.instance("pg-connections", "db3")
	if code, body := e.do("POST", "/api/v1/break-glass", adminSecret, `{"remediation": "rerun-backup", "reason": "test"}`); code != 202 {
		t.Fatalf("break glass %d %s", code, body)
	}
	e.settle()
	runs, _ := e.st.Runs(e.ctx, storeRunsAll)
	for _, p := range []string{"/", "/?state=escalated", "/asserts/pg-connections", "/instances/pg-connections/" + db3.Fingerprint,
		"/runs/" + runs[0].ID, "/heartbeats", "/silences", "/silences?match=%7Binstance%3D%22db3%22%7D", "/settings",
		"/break-glass?assert=pg-connections&fingerprint=" + db3.Fingerprint, "/login"} {
		req, _ := http.NewRequest("GET", e.base+p, nil)
		req.Header.Set("Authorization", "Bearer "+readSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "<title>(2) ") || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s", p, resp.StatusCode, b[:min(len(b), 400)])
		}
	}
	for p, code := range map[string]int{"/asserts/nope": 404, "/runs/nope": 404, "/instances/a/b": 404, "/?match=%7B": 400} {
		if got, _ := e.do("GET", p, readSecret, ""); got != code {
			t.Errorf("%s: %d, want %d", p, got, code)
		}
	}
}
