package web

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
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
	now := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
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

// The API tokens of a config, and the errors of bad ones (which never show
// the secret).
func TestTokensFromConfig(t *testing.T) {
	toks, err := loadTokens(tokensConfig, "", func(k string) string {
		return map[string]string{"T_ADMIN": "admin-secret-0123456789", "T_READ": "read-secret-0123456789ab"}[k]
	})
	if err != nil || len(toks) != 2 || toks[0].role != roleAdmin || toks[1].role != roleRead {
		t.Fatalf("%+v %v", toks, err)
	}
	if _, err := loadTokens(tokensConfig, "", func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "$T_ADMIN is empty") {
		t.Errorf("unset: %v", err)
	}
	if _, err := loadTokens(tokensConfig, "", func(string) string { return "tiny" }); err == nil || strings.Contains(err.Error(), "tiny") {
		t.Errorf("short secret (the error must not show it): %v", err)
	}
}

var tokensConfig = config.Web{Tokens: []config.Token{{Name: "alice", Role: "admin", TokenEnv: "T_ADMIN"}, {Name: "rob", Role: "read", TokenEnv: "T_READ"}}}

// A redirect after sign-in stays on this site.
func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{"//evil.example/x": "/", "https://evil.example": "/", "/silences": "/silences", `/\evil`: "/"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q", in, got)
		}
	}
}

// An acknowledgement of an instance nobody was paged for is a conflict.
func TestAckOfUnpagedIsConflict(t *testing.T) {
	status, _, _ := errStatus(fmt.Errorf("acknowledge: %w", engine.ErrNotEscalated))
	if status != http.StatusConflict {
		t.Fatal(status)
	}
}
