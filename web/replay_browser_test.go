package web_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/assertd/assertd/app"
)

// TestBrowserReplay: in Chromium, a read user opens Replay from the menu,
// fills in the window and submits it; the page shows the report with a
// timeline per assert, styled by the UI's style sheet (the page's CSP
// allows no inline style, so the report carries none).
func TestBrowserReplay(t *testing.T) {
	h := newReplayHook()
	e := newEnvOptions(t, harnessConfig, harnessRules, app.Options{Replay: h.replay})
	e.history()
	ctx := newBrowser(t, 2*time.Minute)
	signInBrowser(t, ctx, e, readSecret, "/")
	do(t, ctx, "replay page", chromedp.Click(chromedp.CSS(`header.top nav a[href="/replay"]`)), chromedp.WaitVisible(chromedp.ID("replay-form")),
		chromedp.SetValue(chromedp.ID("replay-from"), start0.Format(time.RFC3339)),
		chromedp.SetValue(chromedp.ID("replay-to"), e.clock.Now().Format(time.RFC3339)),
		chromedp.SetValue(chromedp.ID("replay-step"), "15s"),
		chromedp.Click(chromedp.ID("replay-submit")),
		chromedp.WaitVisible(chromedp.ID("replay-report")))
	n := len(e.set.Asserts)
	waitFor(t, ctx, "a timeline per assert", `document.querySelectorAll('#replay-report svg[aria-label^="timeline of "]').length === `+strconv.Itoa(n), 5*time.Second)
	waitFor(t, ctx, "styled timelines", `getComputedStyle(document.querySelector('.replay svg .held')).fill === "rgb(227, 244, 232)" &&
		getComputedStyle(document.querySelector('.replay svg .escalated, .replay svg .violated')).fill !== "rgb(0, 0, 0)"`, 5*time.Second)
	waitFor(t, ctx, "the menu entry is current", `document.querySelector('header.top nav a[aria-current]').getAttribute("href") === "/replay"`, 5*time.Second)
	if c := h.calls.Load(); c != 1 {
		t.Errorf("%d replays, want 1", c)
	}
}
