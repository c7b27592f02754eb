package web_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/replay"
	"github.com/assertd/assertd/web"
)

// replayHook is app.Options.Replay as assertd run wires it
// (replay.InForce), counting its calls, and held at its start while a test
// wants a replay to be running.
type replayHook struct {
	calls   atomic.Int32
	hold    atomic.Pointer[chan struct{}] // while set: wait for it to close
	started chan struct{}
	ctxErr  chan error // what a held replay's context said when it ended
}

func newReplayHook() *replayHook {
	return &replayHook{started: make(chan struct{}, 1), ctxErr: make(chan error, 1)}
}

func (h *replayHook) replay(ctx context.Context, a *app.App, w web.ReplayWindow) (web.ReplayReport, error) {
	h.calls.Add(1)
	if hold := h.hold.Load(); hold != nil {
		h.started <- struct{}{}
		select {
		case <-*hold:
		case <-ctx.Done():
			h.ctxErr <- ctx.Err()
			return web.ReplayReport{}, ctx.Err()
		}
	}
	return replay.InForce(ctx, a, w)
}

// history writes ten minutes of the harness's series in the embedded
// TSDB, evaluated live as they come: db3 runs out of connections at 09:03
// and stays out, db2's standby lags more and more.
func (e *env) history() {
	e.t.Helper()
	e.seed() // 09:00–09:04
	for i := 0; i < 12; i++ {
		e.sample("pg_free_connections", 87, "instance", "db1", "cluster", "main")
		e.sample("pg_free_connections", 64, "instance", "db2", "cluster", "main")
		e.sample("pg_free_connections", 3, "instance", "db3", "cluster", "reports")
		e.sample("pg_replication_lag_seconds", 50+float64(i), "instance", "db2", "cluster", "main")
		e.eval()
		e.clock.Add(30 * time.Second)
	}
}

var figureRE = regexp.MustCompile(`<tr data-assert="([^"]+)">(.*?)</tr>`)
var cellRE = regexp.MustCompile(`<td data-figure="([a-z]+)">([0-9]+)</td>`)

// figures reads the figures' table of a replay page: assert → figure → n.
func figures(t *testing.T, body string) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	for _, m := range figureRE.FindAllStringSubmatch(body, -1) {
		row := map[string]int{}
		for _, c := range cellRE.FindAllStringSubmatch(m[2], -1) {
			n, _ := strconv.Atoi(c[2])
			row[c[1]] = n
		}
		out[m[1]] = row
	}
	return out
}

func postReplay(t *testing.T, jar http.CookieJar, e *env, csrf, from, to, step string) (int, string) {
	t.Helper()
	return postForm(t, jar, e.base+"/replay", url.Values{"csrf": {csrf}, "from": {from}, "to": {to}, "step": {step}}, "")
}

// replayCSRF signs in with a token and reads the replay form's CSRF token.
func replayCSRF(t *testing.T, e *env, secret string) (http.CookieJar, string) {
	t.Helper()
	jar := signIn(t, e, secret)
	code, body := getWith(t, jar, e.base+"/replay")
	m := csrfRE.FindStringSubmatch(body)
	if code != 200 || m == nil || !strings.Contains(body, `id="replay-form"`) || !strings.Contains(body, `href="/replay" aria-current="page"`) {
		t.Fatalf("GET /replay: %d %s", code, body)
	}
	return jar, m[1]
}

func getWith(t *testing.T, jar http.CookieJar, u string) (int, string) {
	t.Helper()
	c := &http.Client{Jar: jar}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReplayPage: a signed-in read session submits the form; the page shows
// the report of the configuration in force over that window, figure for
// figure what replay.Run reports for the same window and history, with a
// timeline per assert.
func TestReplayPage(t *testing.T) {
	h := newReplayHook()
	e := newEnvOptions(t, harnessConfig, harnessRules, app.Options{Replay: h.replay})
	e.history()
	from, to := start0, e.clock.Now()
	jar, csrf := replayCSRF(t, e, readSecret)
	code, body := postReplay(t, jar, e, csrf, from.Format(time.RFC3339), to.Format(time.RFC3339), "15s")
	if code != 200 {
		t.Fatalf("POST /replay: %d %s", code, body)
	}
	want, err := replay.Run(e.ctx, replay.Options{ConfigPath: e.config, From: from, To: to, Step: 15 * time.Second,
		Sources: map[string]replay.RangeSource{config.EmbeddedName: e.app.Embedded()}, Pings: e.st})
	if err != nil {
		t.Fatal(err)
	}
	if want.Total.PagesSent == 0 || want.Total.Remediated == 0 || want.Total.Incidents == 0 {
		t.Fatalf("the history has no incident to show: %+v", want.Total)
	}
	got := figures(t, body)
	if len(got) != len(want.Asserts)+1 {
		t.Fatalf("figures of %d rows, want %d asserts and the total: %v", len(got), len(want.Asserts), got)
	}
	check := func(name string, tot replay.Totals) {
		row := got[name]
		for k, n := range map[string]int{"incidents": tot.Incidents, "flaps": tot.Flaps, "remediations": tot.Remediated,
			"verified": tot.Verified, "failed": tot.Failed, "pages": tot.PagesSent} {
			if v, ok := row[k]; !ok || v != n {
				t.Errorf("%s: %s shown %d (%v), replay.Run says %d", name, k, v, ok, n)
			}
		}
	}
	for _, a := range want.Asserts {
		check(a.Name, a.Totals)
		if !strings.Contains(body, `aria-label="timeline of `+a.Name+`"`) {
			t.Errorf("no timeline of %s", a.Name)
		}
	}
	check("total", want.Total)
	if strings.Count(body, `<path class="page"`) != want.Total.PagesSent {
		t.Errorf("%d page marks on the timelines, want %d", strings.Count(body, `<path class="page"`), want.Total.PagesSent)
	}
	if !strings.Contains(body, "2026-03-14 09:00:00Z – 2026-03-14 09:10:00Z, every 15s") {
		t.Errorf("the window is not shown: %s", body)
	}
	// The live assertd was not touched: the replay's runs and pages are
	// its own.
	if n := h.calls.Load(); n != 1 {
		t.Errorf("%d replays, want 1", n)
	}
}

// TestReplayPageBounds: bad or too large windows are refused with what to
// write instead, before any replay runs; one replay runs at a time; a
// replay ends with its request; changed files are not replayed.
func TestReplayPageBounds(t *testing.T) {
	h := newReplayHook()
	e := newEnvOptions(t, harnessConfig, harnessRules, app.Options{Replay: h.replay})
	e.history()
	jar, csrf := replayCSRF(t, e, readSecret)
	for _, tc := range []struct{ from, to, step, want string }{
		{"8d", "now", "30s", "the window is 8d long: a replay here covers at most 7d"},
		{"7d", "now", "10s", "the window has 60481 evaluations at step 10s: a replay here makes at most 20160"},
		{"yesterday", "now", "30s", `from: &#34;yesterday&#34;: write a duration ago (24h, 7d) or a time such as`},
		{"", "now", "30s", "from: write a duration ago"},
		{"1h", "2h", "30s", "the window is empty"},
		{"1h", "2099-01-01T00:00:00Z", "30s", "is in the future"},
		{"1h", "now", "0s", `step &#34;0s&#34;: write a duration of at least 1s`},
		{"1h", "now", "fast", `step &#34;fast&#34;`},
	} {
		code, body := postReplay(t, jar, e, csrf, tc.from, tc.to, tc.step)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.want) || !strings.Contains(body, `id="replay-error"`) {
			t.Errorf("from %q to %q step %q: %d, want 400 and %q in %s", tc.from, tc.to, tc.step, code, tc.want, body)
		}
		if !strings.Contains(body, `value="`+strings.ReplaceAll(tc.from, `"`, "&#34;")+`"`) {
			t.Errorf("from %q: the form lost what was typed", tc.from)
		}
	}
	if n := h.calls.Load(); n != 0 {
		t.Fatalf("%d replays ran for refused windows", n)
	}

	// One at a time: a second while the first runs is refused; the first
	// then answers.
	hold := make(chan struct{})
	h.hold.Store(&hold)
	first := make(chan int, 1)
	go func() {
		code, _ := postReplay(t, jar, e, csrf, "10m", "now", "15s")
		first <- code
	}()
	<-h.started
	req, _ := http.NewRequest("POST", e.base+"/replay", strings.NewReader(url.Values{"from": {"10m"}, "step": {"15s"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "A replay is running") {
		t.Errorf("a second replay: %d %s", resp.StatusCode, b)
	}
	h.hold.Store(nil)
	close(hold)
	if code := <-first; code != 200 {
		t.Errorf("the first replay: %d", code)
	}
	if n := h.calls.Load(); n != 1 {
		t.Errorf("%d replays, want 1 (the refused ones do not call it)", n)
	}

	// The request's end ends the replay.
	hold = make(chan struct{})
	h.hold.Store(&hold)
	ctx, cancel := context.WithCancel(e.ctx)
	gone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", e.base+"/replay", strings.NewReader(url.Values{"from": {"10m"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+readSecret)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		gone <- err
	}()
	<-h.started
	cancel()
	if err := <-h.ctxErr; !errors.Is(err, context.Canceled) {
		t.Errorf("the held replay ended with %v, want its request's cancellation", err)
	}
	if err := <-gone; err == nil {
		t.Error("the cancelled request got an answer")
	}
	h.hold.Store(nil)

	// Files that changed since the configuration in force was read are
	// not what runs: refused until a reload.
	rules := filepath.Join(filepath.Dir(e.config), "rules.yaml")
	if err := os.WriteFile(rules, []byte(harnessRules+"# edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := postReplay(t, jar, e, csrf, "10m", "now", "15s")
	if code != http.StatusConflict || !strings.Contains(body, "changed since the configuration in force was read") {
		t.Errorf("changed files: %d %s", code, body)
	}
}

// TestReplayPageNeedsCredentials: where credentials are configured, a
// replay needs them, even when reads are public; a session needs its CSRF
// token; an assertd without replays says so.
func TestReplayPageNeedsCredentials(t *testing.T) {
	h := newReplayHook()
	cfg := strings.Replace(harnessConfig, "web:\n", "web:\n  public_read: true\n", 1)
	e := newEnvOptions(t, cfg, harnessRules, app.Options{Replay: h.replay})
	form := url.Values{"from": {"10m"}, "to": {"now"}, "step": {"30s"}}
	if code, body := postForm(t, nil, e.base+"/replay", form, ""); code != http.StatusUnauthorized || !strings.Contains(body, "A replay needs a sign-in") {
		t.Errorf("anonymous under public_read: %d %s", code, body)
	}
	if code, body := getWith(t, nil, e.base+"/replay"); code != 200 || !strings.Contains(body, `id="replay-form"`) {
		t.Errorf("the page itself is a read: %d %s", code, body)
	}
	jar := signIn(t, e, readSecret)
	if code, body := postForm(t, jar, e.base+"/replay", form, ""); code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
		t.Errorf("a session without its CSRF token: %d %s", code, body)
	}
	if code, body := postForm(t, jar, e.base+"/replay", form, "https://evil.example"); code != http.StatusForbidden {
		t.Errorf("cross-origin: %d %s", code, body)
	}
	if n := h.calls.Load(); n != 0 {
		t.Errorf("%d replays ran without credentials", n)
	}

	// Without public_read: the browser is sent to sign in, nothing runs.
	e2 := newEnvOptions(t, harnessConfig, harnessRules, app.Options{Replay: h.replay})
	code, _ := postForm(t, nil, e2.base+"/replay", form, "")
	if code != http.StatusSeeOther {
		t.Errorf("anonymous: %d, want the redirect to sign in", code)
	}
	if n := h.calls.Load(); n != 0 {
		t.Errorf("%d replays ran without credentials", n)
	}

	// An assertd built without Options.Replay offers none.
	e3 := newEnv(t)
	req, _ := http.NewRequest("POST", e3.base+"/replay", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+readSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("without replays: %d", resp.StatusCode)
	}
}
