package web_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/web"
)

// The browser tests drive the real UI in headless Chromium (Debian's
// chromium; make deps installs it). They never skip: without Chromium they
// fail.

const chromiumPath = "/usr/bin/chromium"

// newBrowser starts a headless Chromium with its own profile and TMPDIR and
// returns a tab's context, bounded by timeout.
func newBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium not installed: run make deps (%v)", err)
	}
	tmp := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Env("TMPDIR="+tmp),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx, colorScheme("light")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

func colorScheme(s string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: s}}})
		return err
	})
}

// js evaluates an expression in the page.
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// do runs browser actions or fails the test.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ""`))
		t.Fatalf("%s: %v\npage: %s", what, err, html)
	}
}

// waitFor polls a JS condition until it holds.
func waitFor(t *testing.T, ctx context.Context, what, cond string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ""`))
			t.Fatalf("%s: not within %s (%v)\npage: %s", what, within, err, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signInBrowser signs in through the login form.
func signInBrowser(t *testing.T, ctx context.Context, e *env, secret, next string) {
	t.Helper()
	do(t, ctx, "sign in",
		chromedp.Navigate(e.base+"/login?next="+web.URLEscape(next)),
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), secret),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	waitFor(t, ctx, "signed in", `location.pathname !== "/login" && !!document.querySelector(".who .user")`, 10*time.Second)
}

func signOut(t *testing.T, ctx context.Context) {
	t.Helper()
	do(t, ctx, "sign out", chromedp.Click(chromedp.CSS(".who button")))
	waitFor(t, ctx, "signed out", `location.pathname === "/login" && document.readyState === "complete"`, 10*time.Second)
}

// rowStates lists the overview's rows as "state assert instance".
const rowStates = `[...document.querySelectorAll("#instances tr.row")].map(r =>
	r.querySelector(".state").textContent + " " + r.dataset.assert + " " + (r.querySelector("td:nth-child(3)").innerText.match(/instance=(\S+)/) || ["", "-"])[1]).join("\n")`

func TestBrowser(t *testing.T) {
	e := newEnv(t)
	e.seed()
	ctx := newBrowser(t, 3*time.Minute)
	signInBrowser(t, ctx, e, adminSecret, "/")

	t.Run("overview lists violated instances above ok ones", func(t *testing.T) {
		rows := strings.Split(js[string](t, ctx, rowStates), "\n")
		if len(rows) != 5 {
			t.Fatalf("rows:\n%s", strings.Join(rows, "\n"))
		}
		firstOK := -1
		for i, r := range rows {
			if strings.HasPrefix(r, "ok ") && firstOK < 0 {
				firstOK = i
			}
			if !strings.HasPrefix(r, "ok ") && firstOK >= 0 {
				t.Errorf("row %d %q is below an ok row:\n%s", i, r, strings.Join(rows, "\n"))
			}
		}
		if !strings.HasPrefix(rows[0], "escalated ") || firstOK != 2 {
			t.Errorf("rows:\n%s", strings.Join(rows, "\n"))
		}
		if title := js[string](t, ctx, "document.title"); title != "(2) Overview · assertd" {
			t.Errorf("title %q", title)
		}
	})

	t.Run("a filter in the URL narrows the list", func(t *testing.T) {
		do(t, ctx, "filter", chromedp.Navigate(e.base+`/?match=`+web.URLEscape(`{instance=~"db[12]"}`)+"&state=ok"), chromedp.WaitVisible(chromedp.ID("instances")))
		rows := js[string](t, ctx, rowStates)
		if rows != "ok pg-connections db1\nok pg-connections db2" && rows != "ok pg-connections db2\nok pg-connections db1" {
			t.Errorf("filtered rows:\n%s", rows)
		}
		if v := js[string](t, ctx, `document.querySelector("input[name=match]").value`); v != `{instance=~"db[12]"}` {
			t.Errorf("the filter form lost the matchers: %q", v)
		}
		// The filter form writes the same URL.
		do(t, ctx, "filter form", chromedp.Navigate(e.base+"/"), chromedp.WaitVisible(chromedp.ID("instances")),
			chromedp.SetValue(chromedp.CSS("select[name=assert]"), "pg-replication-lag"),
			chromedp.Click(chromedp.CSS("form.filters button")))
		waitFor(t, ctx, "filtered by the form", `location.search.includes("assert=pg-replication-lag") && document.querySelectorAll("#instances tr.row").length === 1`, 10*time.Second)
	})

	t.Run("a silence created through the form silences the instance", func(t *testing.T) {
		db3 := e.instance("pg-connections", "db3")
		do(t, ctx, "instance page", chromedp.Navigate(e.base+"/instances/pg-connections/"+db3.Fingerprint),
			chromedp.Click(chromedp.CSS(`a.button[href^="/silences"]`)),
			chromedp.WaitVisible(chromedp.ID("silence-form")))
		if v := js[string](t, ctx, `document.getElementById("silence-matchers").value`); !strings.Contains(v, `instance="db3"`) {
			t.Fatalf("matchers not prefilled: %q", v)
		}
		do(t, ctx, "create silence",
			chromedp.SetValue(chromedp.ID("silence-matchers"), `{instance="db3"}`),
			chromedp.SetValue(chromedp.ID("silence-duration"), "3h"),
			chromedp.SendKeys(chromedp.ID("silence-comment"), "reports DB reindex, CHG-4711"),
			chromedp.Click(chromedp.ID("silence-submit")))
		waitFor(t, ctx, "silence listed", `location.search === "?done=silence" && document.querySelector("#silences tr.silence code").textContent === '{instance="db3"}'`, 10*time.Second)
		ss, err := e.st.Silences(e.ctx, e.clock.Now(), false)
		if err != nil || len(ss) != 1 || ss[0].Author != "alice" || ss[0].Comment != "reports DB reindex, CHG-4711" || !ss[0].End.Equal(e.clock.Now().Add(3*time.Hour)) {
			t.Fatalf("stored silences %+v %v", ss, err)
		}
		e.clock.Add(15 * time.Second)
		e.eval()
		if got := e.instance("pg-connections", "db3"); got.Silenced != ss[0].ID {
			t.Fatalf("the engine did not silence db3: %+v", got)
		}
		do(t, ctx, "instance page", chromedp.Navigate(e.base+"/instances/pg-connections/"+db3.Fingerprint), chromedp.WaitVisible(chromedp.ID("instance-head")))
		if txt := js[string](t, ctx, `document.getElementById("instance-head").innerText`); !strings.Contains(txt, "silenced by "+ss[0].ID) {
			t.Errorf("instance page: %s", txt)
		}
	})

	t.Run("an SSE update shows a state change without a reload", func(t *testing.T) {
		do(t, ctx, "overview", chromedp.Navigate(e.base+"/"), chromedp.WaitVisible(chromedp.ID("instances")))
		waitFor(t, ctx, "event stream open", `document.getElementById("live-status").textContent !== ""`, 10*time.Second)
		js[bool](t, ctx, `window.__notReloaded = true`)
		lag := `(document.querySelector('#instances tr.row[data-assert="pg-replication-lag"] .state') || {}).textContent`
		if s := js[string](t, ctx, lag); s != "escalated" {
			t.Fatalf("lag row is %q", s)
		}
		// The standby catches up: the engine moves the instance to ok.
		e.clock.Add(15 * time.Second)
		e.sample("pg_replication_lag_seconds", 0.4, "instance", "db2", "cluster", "main")
		e.eval()
		waitFor(t, ctx, "the row shows ok", lag+` === "ok"`, 10*time.Second)
		if !js[bool](t, ctx, `window.__notReloaded === true`) {
			t.Error("the page was reloaded")
		}
		waitFor(t, ctx, "the title counts the problems", `document.title === "Overview · assertd"`, 5*time.Second)
	})

	t.Run("break glass without admin is refused, with admin starts a run whose steps appear", func(t *testing.T) {
		db3 := e.instance("pg-connections", "db3")
		before, err := e.st.Runs(e.ctx, store.RunFilter{})
		if err != nil {
			t.Fatal(err)
		}
		bg := e.base + "/break-glass?assert=pg-connections&fingerprint=" + db3.Fingerprint
		fill := func(reason string) {
			do(t, ctx, "break-glass form", chromedp.Navigate(bg), chromedp.WaitVisible(chromedp.ID("break-glass-form")),
				chromedp.SendKeys(chromedp.ID("bg-reason"), reason),
				chromedp.Click(chromedp.ID("bg-confirm")),
				chromedp.Click(chromedp.ID("bg-submit")))
		}
		// As rob (read): the page warns, the server refuses.
		signOut(t, ctx)
		signInBrowser(t, ctx, e, readSecret, "/")
		fill("connections exhausted on db3")
		waitFor(t, ctx, "refused", `!!document.getElementById("error-message")`, 10*time.Second)
		if msg := js[string](t, ctx, `document.getElementById("error-message").textContent`); !strings.Contains(msg, "has the role read") {
			t.Errorf("refusal: %q", msg)
		}
		e.settle()
		if runs, _ := e.st.Runs(e.ctx, store.RunFilter{}); len(runs) != len(before) {
			t.Fatalf("a read token started something: %+v", runs)
		}
		// Without the reason the browser does not even send it; the
		// server checks too (TestBadInput).
		signOut(t, ctx)
		signInBrowser(t, ctx, e, adminSecret, "/")
		e.freeConnectionsOnTerminate(db3, 6, 51)
		fill("connections exhausted on db3; idle sessions from the report job")
		waitFor(t, ctx, "run page", `location.pathname.startsWith("/runs/") && !!document.getElementById("run-steps")`, 10*time.Second)
		// The run goes on after the page is served (its first step may or
		// may not be recorded by then), and the run page follows instance
		// states, not steps (db3 is silenced here, so its recovery sends no
		// event): once the run has ended, reload.
		e.settle()
		do(t, ctx, "reload the run page", chromedp.Reload())
		waitFor(t, ctx, "run page with steps", `location.pathname.startsWith("/runs/") && document.querySelectorAll("#run-steps li.step").length === 2`, 10*time.Second)
		steps := js[string](t, ctx, `[...document.querySelectorAll("#run-steps li.step")].map(s => s.querySelector(".outcome").textContent + " " + s.querySelector(".step-name").textContent).join(",")`)
		// The real run: the (faked) psql freed the connections, the
		// engine's verify sees it.
		if steps != "ok terminate,ok verify" {
			t.Errorf("steps %q", steps)
		}
		if out := js[string](t, ctx, `document.querySelector("#run-steps pre.log").textContent`); !strings.Contains(out, "pg_terminate_backend") {
			t.Errorf("step output %q", out)
		}
		if out := js[string](t, ctx, `document.querySelector("#run-steps li.step:nth-child(2) pre.log").textContent`); !strings.Contains(out, "pg-connections holds for") {
			t.Errorf("verify output %q", out)
		}
		e.settle()
		runs, _ := e.st.Runs(e.ctx, store.RunFilter{})
		if len(runs) != len(before)+1 || !strings.HasPrefix(runs[0].ID, "bg-") || runs[0].Status != assertd.RunSucceeded || runs[0].Fingerprint != db3.Fingerprint {
			t.Fatalf("runs %+v", runs)
		}
		log, _ := e.st.AuditLog(e.ctx, storeAuditAll)
		var glass []string
		for _, a := range log {
			if a.Action == "run.break_glass" {
				glass = append(glass, a.Actor+": "+a.Reason)
			}
		}
		if len(glass) != 1 || glass[0] != "alice: connections exhausted on db3; idle sessions from the report job" {
			t.Errorf("break glass in the audit trail: %q", glass)
		}

	})

	t.Run("usable on a phone", func(t *testing.T) {
		do(t, ctx, "phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(e.base+"/"), chromedp.WaitVisible(chromedp.ID("instances")))
		if w := js[float64](t, ctx, `document.documentElement.scrollWidth`); w > 391 {
			t.Errorf("the page is %vpx wide on a 390px phone", w)
		}
		do(t, ctx, "desktop", chromedp.EmulateReset())
	})
}
