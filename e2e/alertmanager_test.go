package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/testam"
)

const amToken = "alertmanager-write-token-0123456789"

// fakeDB is a PostgreSQL as Prometheus sees it: pg_up on /metrics, and a
// restart (POST /restart) that brings it back unless it is broken.
type fakeDB struct {
	mu       sync.Mutex
	up       bool
	broken   bool
	restarts int
	srv      *httptest.Server
}

func newFakeDB(t *testing.T, broken bool) *fakeDB {
	db := &fakeDB{broken: broken}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		db.mu.Lock()
		defer db.mu.Unlock()
		v := 0
		if db.up {
			v = 1
		}
		fmt.Fprintf(w, "# TYPE pg_up gauge\npg_up{instance=\"db1\"} %d\n", v)
	})
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		db.mu.Lock()
		defer db.mu.Unlock()
		db.restarts++
		if !db.broken {
			db.up = true
		}
	})
	db.srv = httptest.NewServer(mux)
	t.Cleanup(db.srv.Close)
	return db
}

func (db *fakeDB) set(up bool) { db.mu.Lock(); db.up = up; db.mu.Unlock() }

func (db *fakeDB) addr() string { u, _ := url.Parse(db.srv.URL); return u.Host }

const pgRules = `groups:
  - name: postgres
    rules:
      - alert: PostgresqlDown
        expr: pg_up == 0
        labels: {severity: page}
        annotations:
          summary: "PostgreSQL {{ $labels.instance }} is down"
          runbook_url: http://wiki.example/pg-down
`

// amRig is the whole loop: a fake PostgreSQL that a real Prometheus scrapes
// and alerts on, a real Alertmanager whose webhook receiver is the assertd
// binary, and assertd remediating, verifying (against its own scrape of the
// database), silencing the alert in Alertmanager during the run, and
// informing Slack or paging PagerDuty.
type amRig struct {
	*rig
	db   *fakeDB
	am   *testam.Process
	prom *testam.Process
}

func newAMRig(t *testing.T, broken bool) *amRig {
	db := newFakeDB(t, broken)
	setup := fmt.Sprintf(`sources:
  embedded:
    scrape_interval: 250ms
    targets: [{url: "http://%s/metrics", labels: {job: postgres, instance: db1}}]
web:
  tokens: [{name: alertmanager, role: write, token_env: E2E_AM_TOKEN}]
`, db.addr())
	rules := fmt.Sprintf(`asserts:
  - name: postgres-down
    trigger: {alertmanager: '{alertname="PostgresqlDown"}', silence: 10m, stale_after: 1h}
    verify:
      query: {up: 'max by (instance) (pg_up)'}
      expect: up == 1
      resolved_within: 8s
    remediate: restart-postgres
remediations:
  - name: restart-postgres
    steps:
      - {name: restart, http: {method: POST, url: "%s/restart", expect_status: [200]}, timeout: 5s}
      - {name: verify, verify: postgres-down, timeout: 20s}
`, db.srv.URL)
	r := newRig(t, setup, rules)
	r.startWith("E2E_PD_KEY="+pdKey, "E2E_SLACK_TOKEN="+slackToken, "E2E_AM_TOKEN="+amToken)
	am := testam.StartAlertmanager(t, testam.AlertmanagerOptions{Webhook: testam.Receiver{URL: r.base + "/api/v1/alertmanager", BearerToken: amToken}})
	prom := testam.StartPrometheus(t, testam.PrometheusOptions{Targets: []string{db.addr()}, Rules: pgRules, Alertmanager: am.URL})
	return &amRig{rig: r, db: db, am: am, prom: prom}
}

type amSilence struct {
	ID      string `json:"id"`
	Comment string `json:"comment"`
	Status  struct {
		State string `json:"state"`
	} `json:"status"`
}

func (r *amRig) silences() []amSilence {
	resp, err := http.Get(r.am.URL + "/api/v2/silences")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []amSilence
	json.NewDecoder(resp.Body).Decode(&out)
	return out
}

// The run is silenced in Alertmanager while it lasts: the silence names
// the run and is expired once the run ended.
func (r *amRig) checkSilence(run assertd.Run) {
	r.t.Helper()
	r.eventually(10*time.Second, "the run's silence expired", func() error {
		ss := r.silences()
		if len(ss) != 1 || !strings.Contains(ss[0].Comment, run.ID) || ss[0].Status.State != "expired" {
			return fmt.Errorf("silences %+v", ss)
		}
		return nil
	})
	if !strings.Contains(r.output(), `msg="silenced the alert in Alertmanager while the run fixes it"`) {
		r.t.Fatalf("no silence logged:\n%s", tail(r.output(), 20))
	}
}

// Prometheus → Alertmanager → assertd → remediation → verify → info.
func TestAlertmanagerAlertRemediatedAndVerified(t *testing.T) {
	t.Parallel()
	r := newAMRig(t, false)
	r.eventually(60*time.Second, "the restart verified and Slack informed", func() error {
		runs := r.runs("restart-postgres")
		if len(runs) != 1 || runs[0].Status != assertd.RunSucceeded {
			return fmt.Errorf("runs %+v", runs)
		}
		if r.slackPosts("fixed by remediation restart-postgres") != 1 {
			return fmt.Errorf("no informational Slack message yet: %+v", r.slack.Posts())
		}
		return nil
	})
	run := r.runs("restart-postgres")[0]
	if !strings.Contains(run.Outcome, "alert resolved within 8s; verify of postgres-down holds") {
		t.Fatalf("outcome %q", run.Outcome)
	}
	r.checkSilence(run)
	r.settled("postgres-down", 3)
	if n := len(r.pd.Events()); n != 0 || r.state("postgres-down", "db1") != assertd.OK || len(r.runs("restart-postgres")) != 1 {
		t.Fatalf("PagerDuty got %d events; state %s; %d runs", n, r.state("postgres-down", "db1"), len(r.runs("restart-postgres")))
	}
	r.db.mu.Lock()
	restarts := r.db.restarts
	r.db.mu.Unlock()
	if restarts != 1 {
		t.Fatalf("%d restarts", restarts)
	}
}

// The fix does not work: the verify fails, PagerDuty gets one incident with
// the alert's labels, annotations and generatorURL; when the database comes
// back, Alertmanager's resolve flows through to PagerDuty.
func TestAlertmanagerAlertUnfixedPagesAndResolves(t *testing.T) {
	t.Parallel()
	r := newAMRig(t, true)
	r.eventually(60*time.Second, "paged once", func() error {
		runs := r.runs("restart-postgres")
		if len(runs) != 1 || runs[0].Status != assertd.RunFailed {
			return fmt.Errorf("runs %+v", runs)
		}
		if r.pd.Incidents() != 1 {
			return fmt.Errorf("%d incidents", r.pd.Incidents())
		}
		return nil
	})
	r.checkSilence(r.runs("restart-postgres")[0])
	var trig *struct {
		Details map[string]any
		Links   []map[string]string
	}
	for _, e := range r.pd.Events() {
		if e.Action == "trigger" {
			trig = &struct {
				Details map[string]any
				Links   []map[string]string
			}{e.Payload.Details, e.Links}
		}
	}
	b, _ := json.Marshal(trig)
	for _, want := range []string{`"alertname":"PostgresqlDown"`, `"severity":"page"`, `"runbook_url":"http://wiki.example/pg-down"`,
		`"summary":"PostgreSQL db1 is down"`, r.prom.URL + "/graph?g0.expr="} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the page has no %s: %s", want, b)
		}
	}
	r.db.set(true)
	r.eventually(60*time.Second, "resolved through Alertmanager", func() error {
		if r.pdEvents("resolve") != 1 || r.state("postgres-down", "db1") != assertd.OK {
			return fmt.Errorf("resolves %d, state %s", r.pdEvents("resolve"), r.state("postgres-down", "db1"))
		}
		return nil
	})
	if n := r.pd.Incidents(); n != 1 || len(r.runs("restart-postgres")) != 1 {
		t.Fatalf("%d incidents, %d runs", n, len(r.runs("restart-postgres")))
	}
}
