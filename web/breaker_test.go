package web_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// A fleet of ten API servers whose breaker trips when more than 40% of
// them turn violated within 5m: five do.
var fleetConfig = strings.Replace(harnessConfig, "safety: {max_concurrent_runs: 4, run_budget: {count: 20, within: 1h}}",
	"safety: {max_concurrent_runs: 4, blast_radius: {share: 0.4, window: 5m}}", 1)

const fleetRules = `asserts:
  - name: api-up
    description: Every API server answers its health check
    every: 15s
    query: {up: 'api_up'}
    expect: up == 1
    remediate: restart-api
remediations:
  - name: restart-api
    lock: "api/{{ .Labels.node }}"
    steps:
      - {name: restart, run: [systemctl, restart, api.service], timeout: 1m, on_failure: page}
      - {name: verify, verify: api-up, on_failure: page}
`

// fleet writes api_up for nodes n0..n9: down for those listed.
func (e *env) fleet(down ...int) {
	e.t.Helper()
	for i := range 10 {
		v := 1.0
		for _, d := range down {
			if d == i {
				v = 0
			}
		}
		e.sample("api_up", v, "node", fmt.Sprintf("n%d", i))
	}
}

func fleetNode(e *env, i int) assertd.Instance {
	e.t.Helper()
	for _, in := range e.eng.Instances() {
		if in.Assert == "api-up" && in.Labels["node"] == fmt.Sprintf("n%d", i) {
			return in
		}
	}
	e.t.Fatalf("no node n%d", i)
	return assertd.Instance{}
}

func runsOf(t *testing.T, e *env, fp string) []assertd.Run {
	t.Helper()
	rs, err := e.st.Runs(e.ctx, store.RunFilter{Assert: "api-up", Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

type breakersAnswer struct {
	Breakers []assertd.Breaker `json:"breakers"`
}

// tripFleet runs the fleet until five of ten nodes turn violated at once
// and the breaker opens.
func tripFleet(t *testing.T, e *env) {
	t.Helper()
	e.fleet()
	e.eval()
	e.clock.Add(15 * time.Second)
	e.fleet(0, 1, 2, 3, 4)
	e.eval()
	if rs, _ := e.st.Runs(e.ctx, store.RunFilter{}); len(rs) != 0 {
		t.Fatalf("the breaker let %d runs start: %+v", len(rs), rs)
	}
	var bs breakersAnswer
	e.getJSON("/api/v1/breakers", &bs)
	if len(bs.Breakers) != 1 || !bs.Breakers[0].Open || bs.Breakers[0].Violating != 5 || bs.Breakers[0].Instances != 10 ||
		!strings.Contains(bs.Breakers[0].Reason, "5 of 10 instances of api-up are violating now") {
		t.Fatalf("breakers %+v", bs)
	}
}

// The breaker opens at 5 of 10; its reason follows the fleet (6 of 10, not
// the 5 of the trip); it survives a restart; an operator closes it through
// the API (admin, reason required, audited under the token's name); the
// next violation is remediated, the violations before the close do not
// trip it again at once.
func TestBreakerCloseThroughTheAPI(t *testing.T) {
	e := newEnvWith(t, fleetConfig, fleetRules)
	tripFleet(t, e)
	ms, _ := e.st.Messages(e.ctx, store.MessageFilter{Status: ""})
	groups := map[string]bool{}
	for _, m := range ms {
		groups[m.DedupKey] = true
	}
	if len(groups) != 1 {
		t.Fatalf("one grouped page for the five: %d dedup keys %v", len(groups), groups)
	}

	// A sixth turns violated: refused, and the reason says 6 of 10.
	e.clock.Add(15 * time.Second)
	e.fleet(0, 1, 2, 3, 4, 5)
	e.eval()
	n5 := fleetNode(e, 5)
	if len(runsOf(t, e, n5.Fingerprint)) != 0 || n5.State != assertd.Escalated {
		t.Fatalf("n5 while the breaker is open: %+v", n5)
	}
	ds, _ := e.st.Decisions(e.ctx, store.DecisionFilter{Assert: "api-up", Fingerprint: n5.Fingerprint})
	if len(ds) == 0 || !strings.Contains(ds[0].Reason, "6 of 10 instances of api-up are violating now") || strings.Contains(ds[0].Reason, "5 of 10 instances of api-up are") {
		t.Fatalf("n5's refusal: %+v", ds)
	}
	var bs breakersAnswer
	e.getJSON("/api/v1/breakers", &bs)
	if b := bs.Breakers[0]; b.ViolatingNow != 6 || b.InstancesNow != 10 || !strings.Contains(b.Reason, "6 of 10 instances of api-up are violating now") {
		t.Fatalf("shown: %+v", b)
	}
	var one struct {
		Breaker *assertd.Breaker `json:"breaker"`
	}
	e.getJSON("/api/v1/asserts/api-up", &one)
	if one.Breaker == nil || !one.Breaker.Open {
		t.Fatalf("the assert's breaker: %+v", one.Breaker)
	}

	// A second assertd on the same store (a restart) sees it open.
	if bs, err := e.restart().Engine().Breakers(e.ctx, e.clock.Now()); err != nil || len(bs) != 1 || !bs[0].Open || bs[0].ViolatingNow != 6 {
		t.Fatalf("after a restart: %+v %v", bs, err)
	}

	// Closing: admin only, with a reason.
	if code, body := e.do("POST", "/api/v1/breaker/close", readSecret, `{"assert": "api-up", "reason": "x"}`); code != 403 {
		t.Fatalf("close with a read token: %d %s", code, body)
	}
	if code, body := e.do("POST", "/api/v1/breaker/close", adminSecret, `{"assert": "api-up", "reason": " "}`); code != 400 || !strings.Contains(body, `"field": "reason"`) {
		t.Fatalf("close without a reason: %d %s", code, body)
	}
	if code, body := e.do("POST", "/api/v1/breaker/close", adminSecret, `{"assert": "nope", "reason": "x"}`); code != 400 || !strings.Contains(body, `"field": "assert"`) {
		t.Fatalf("close of an unknown assert: %d %s", code, body)
	}
	code, body := e.do("POST", "/api/v1/breaker/close", adminSecret, `{"assert": "api-up", "reason": "the load balancer was fixed, CHG-88"}`)
	var closed assertd.Breaker
	if err := json.Unmarshal([]byte(body), &closed); code != 200 || err != nil || closed.Open || closed.ClosedBy != "alice" || !closed.ClosedAt.Equal(e.clock.Now()) {
		t.Fatalf("close: %d %s", code, body)
	}
	if code, body := e.do("POST", "/api/v1/breaker/close", adminSecret, `{"assert": "api-up", "reason": "again"}`); code != 409 {
		t.Fatalf("closing a closed breaker: %d %s", code, body)
	}
	var audit struct {
		Audit []assertd.AuditEntry `json:"audit"`
	}
	e.getJSON("/api/v1/audit?action=breaker.close", &audit)
	if log := audit.Audit; len(log) != 1 || log[0].Actor != "alice" || log[0].Target != "api-up" || log[0].Reason != "the load balancer was fixed, CHG-88" {
		t.Fatalf("audit %+v", log)
	}

	// The next violation runs; the six before the close do not trip it.
	e.clock.Add(15 * time.Second)
	e.fleet(0, 1, 2, 3, 4, 5, 6)
	e.eval()
	n6 := fleetNode(e, 6)
	if rs := runsOf(t, e, n6.Fingerprint); len(rs) != 1 {
		t.Fatalf("the next violation after the close: %d runs, state %s: %s", len(rs), n6.State, n6.Reason)
	}
	if rs, _ := e.st.Runs(e.ctx, store.RunFilter{Assert: "api-up"}); len(rs) != 1 {
		t.Fatalf("%d runs: only the new violation runs", len(rs))
	}
	e.getJSON("/api/v1/breakers", &bs)
	if b := bs.Breakers[0]; b.Open || b.ClosedBy != "alice" || !strings.Contains(b.Reason, "closed by alice") {
		t.Fatalf("after the close: %+v", b)
	}
}

// The breaker shows on the overview and on its assert's page; the close
// button there, clicked in a real browser with a reason, closes it under
// the signed-in token's name, and the next violation runs.
func TestBrowserBreakerClose(t *testing.T) {
	e := newEnvWith(t, fleetConfig, fleetRules)
	tripFleet(t, e)
	ctx := newBrowser(t, 2*time.Minute)
	signInBrowser(t, ctx, e, adminSecret, "/")
	if txt := js[string](t, ctx, `(document.querySelector(".banner.breaker") || {}).innerText || ""`); !strings.Contains(txt, "Blast-radius breaker open for api-up") ||
		!strings.Contains(txt, "5 of 10") {
		t.Fatalf("overview banner: %q", txt)
	}
	if n := js[int](t, ctx, `document.querySelectorAll(".banner.breaker form[action='/breaker/close'] input[name=reason][required]").length`); n != 1 {
		t.Fatalf("the overview's banner has %d close forms with a reason", n)
	}
	do(t, ctx, "to the assert's breaker", chromedp.Click(chromedp.CSS(`.banner.breaker a`)), chromedp.WaitVisible(chromedp.ID("breaker-close-form")))
	if txt := js[string](t, ctx, `document.getElementById("breaker").innerText`); !strings.Contains(txt, "Open") || !strings.Contains(txt, "5 of 10 instances are violating now") {
		t.Fatalf("breaker section: %s", txt)
	}
	do(t, ctx, "close the breaker",
		chromedp.SendKeys(chromedp.ID("breaker-reason-input"), "load balancer fixed, CHG-91"),
		chromedp.Click(chromedp.ID("breaker-close")))
	waitFor(t, ctx, "closed", `location.search === "?done=breaker" && document.getElementById("breaker-state").innerText.includes("Closed by alice")`, 10*time.Second)
	if n := js[int](t, ctx, `document.querySelectorAll("#breaker-close-form").length`); n != 0 {
		t.Errorf("the close form is still shown")
	}
	log, err := e.st.AuditLog(e.ctx, store.AuditFilter{Action: "breaker.close"})
	if err != nil || len(log) != 1 || log[0].Actor != "alice" || log[0].Reason != "load balancer fixed, CHG-91" {
		t.Fatalf("audit %+v %v", log, err)
	}
	e.clock.Add(15 * time.Second)
	e.fleet(0, 1, 2, 3, 4, 5)
	e.eval()
	if rs := runsOf(t, e, fleetNode(e, 5).Fingerprint); len(rs) != 1 {
		ds, _ := e.st.Decisions(e.ctx, store.DecisionFilter{Fingerprint: fleetNode(e, 5).Fingerprint})
		t.Fatalf("the next violation after the close: %d runs; decisions %+v", len(rs), ds)
	}
	do(t, ctx, "overview", chromedp.Navigate(e.base+"/"), chromedp.WaitVisible(chromedp.ID("instances")))
	if n := js[int](t, ctx, `document.querySelectorAll(".banner.breaker").length`); n != 0 {
		t.Errorf("the overview still shows the breaker open")
	}
}
