package web_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/assertd/assertd/store"
)

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
	runs, _ := e.st.Runs(e.ctx, store.RunFilter{})
	for _, p := range []string{"/", "/?state=escalated", "/asserts/pg-connections", "/instances/pg-connections/" + db3.Fingerprint,
		"/runs/" + runs[0].ID, "/heartbeats", "/rules", "/silences", "/silences?match=%7Binstance%3D%22db3%22%7D", "/settings",
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
