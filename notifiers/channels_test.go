package notifiers_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/internal/testsaas"
	"github.com/assertd/assertd/notifiers"
	"github.com/assertd/assertd/store"
	"github.com/assertd/assertd/store/sqlite"
)

// Missing or unreadable secrets stop New with an error naming the channel
// and the setting, never the secret.
func TestSecretsFailClearly(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "empty"), []byte("  \n"), 0o600)
	os.WriteFile(filepath.Join(dir, "key"), []byte(pdKey+"\n"), 0o600)
	st, _ := sqlite.Open(context.Background(), filepath.Join(dir, "db"))
	defer st.Close()
	for _, tc := range []struct {
		n    config.Notifier
		want string
	}{
		{config.Notifier{Name: "s", Slack: &config.Slack{TokenEnv: "NOPE", Channel: "#x"}}, `notifier "s": slack.token_env names $NOPE, which is empty or unset`},
		{config.Notifier{Name: "s", Slack: &config.Slack{WebhookURLFile: "missing"}}, `notifier "s": slack.webhook_url_file: cannot read ` + filepath.Join(dir, "missing") + ": no such file or directory"},
		{config.Notifier{Name: "p", PagerDuty: &config.PagerDuty{RoutingKeyFile: "empty"}}, `notifier "p": pagerduty.routing_key_file: ` + filepath.Join(dir, "empty") + " is empty"},
		{config.Notifier{Name: "w", Webhook: &config.Webhook{URL: "http://127.0.0.1:1/", SecretEnv: "NOPE"}}, `notifier "w": webhook.secret_env names $NOPE`},
		{config.Notifier{Name: "w", Webhook: &config.Webhook{URLEnv: "NOPE"}}, `notifier "w": webhook.url_env names $NOPE`},
	} {
		_, err := notifiers.New(&config.Config{Notifiers: []config.Notifier{tc.n}}, dir, env, notifiers.Options{Store: st})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v\nwant %s", err, tc.want)
		}
	}
	// A secret read from a file works, and is never in an error.
	_, err := notifiers.New(&config.Config{Notifiers: []config.Notifier{{Name: "p", PagerDuty: &config.PagerDuty{RoutingKeyFile: "key"}}}}, dir, env, notifiers.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
}

// Refusals are dead letters with the reason; garbage is retried with a
// bounded excerpt; fields are cut to the APIs' limits.
func TestRefusalsGarbageAndLimits(t *testing.T) {
	r := newRig(t, config.EscalationPolicy{}, nil)
	ctx := context.Background()
	r.pd.SetFault(testsaas.Refuse400)
	r.slack.SetFault(testsaas.Garbage)
	r.page("disk", assertd.Labels{"instance": "db-1"}, t0, "slack", "pagerduty")
	r.step(5 * time.Second)
	r.step(time.Second)
	pdm, _ := r.st.Messages(ctx, store.MessageFilter{Channel: "pagerduty"})
	if len(pdm) != 1 || pdm[0].Status != assertd.MsgDead || !strings.Contains(pdm[0].LastError, "pagerduty refused the event") ||
		!strings.Contains(pdm[0].LastError, "HTTP 400") || !strings.Contains(pdm[0].LastError, "Event object is invalid") {
		t.Fatalf("a 400 must be a dead letter saying why: %+v", pdm)
	}
	sm, _ := r.st.Messages(ctx, store.MessageFilter{Channel: "slack"})
	if len(sm) != 1 || sm[0].Status != assertd.MsgPending || !strings.Contains(sm[0].LastError, "garbled answer (HTTP 200): <html><body>Gateway says hello") ||
		len(sm[0].LastError) > 400 {
		t.Fatalf("garbage must be retried with a bounded excerpt: %+v", sm)
	}
	r.slack.SetFault(testsaas.OK)
	r.until(time.Second, 2*time.Minute, "Slack after the garbage", func() bool { return len(r.slack.TopLevel()) == 1 })

	// Limits: a huge summary and step log are cut to what the APIs take.
	r.pd.SetFault(testsaas.OK)
	huge := strings.Repeat("é", 400_000)
	n := assertd.Notice{Version: 1, Kind: assertd.NoticeTrigger, Assert: "big", Fingerprint: "fp", Labels: assertd.Labels{"instance": "x"},
		Reason: huge, StepLog: huge, Annotations: map[string]string{"summary": huge}, Policy: "ops", At: r.now, Since: r.now}
	b, _ := json.Marshal(n)
	r.st.Enqueue(ctx, assertd.Message{Key: "big/pd", Channel: "pagerduty", DedupKey: "big/fp", Kind: "trigger", Payload: string(b), Created: r.now},
		assertd.Message{Key: "big/slack", Channel: "slack", DedupKey: "big/fp", Kind: "trigger", Payload: string(b), Created: r.now})
	r.until(time.Second, time.Minute, "the big page on both", func() bool { return r.events("trigger") == 1 && len(r.slack.TopLevel()) == 2 })
	e := r.pd.Events()[0]
	raw, _ := json.Marshal(e)
	if len(e.Payload.Summary) > 1024 || len(raw) > 512<<10 {
		t.Errorf("PagerDuty event: summary %d bytes, event %d bytes", len(e.Payload.Summary), len(raw))
	}
	var blocks []map[string]any
	json.Unmarshal([]byte(r.slack.TopLevel()[1].Blocks), &blocks)
	if len(blocks) == 0 || len(blocks) > 50 {
		t.Fatalf("%d Slack blocks", len(blocks))
	}
	for _, bl := range blocks {
		if txt, ok := bl["text"].(map[string]any); ok && len([]rune(txt["text"].(string))) > 3000 {
			t.Errorf("a %s block of %d characters", bl["type"], len([]rune(txt["text"].(string))))
		}
	}
}

// Pages for many instances of one assert within group_wait become one
// message per channel; the group resolves with its last member.
func TestGrouping(t *testing.T) {
	r := newRig(t, config.EscalationPolicy{Name: "ops", GroupWait: assertd.Duration(10 * time.Second),
		Levels: []config.Level{{Notify: []string{"slack", "pagerduty"}}}}, nil)
	var hosts []assertd.Labels
	for i, h := range []string{"a", "b", "c", "d"} {
		hosts = append(hosts, assertd.Labels{"instance": h})
		r.page("latency", hosts[i], t0.Add(time.Duration(i)*2*time.Second), "slack", "pagerduty")
	}
	r.until(time.Second, time.Minute, "grouped page", func() bool { return r.events("trigger") > 0 && len(r.slack.TopLevel()) > 0 })
	for range 20 {
		r.step(time.Second)
	}
	if n, top := r.events("trigger"), r.slack.TopLevel(); n != 1 || len(top) != 1 || !strings.Contains(top[0].Text, "(4 instances)") {
		t.Fatalf("%d PagerDuty triggers, Slack %+v; want one message for the group of 4", n, top)
	}
	for i, h := range hosts {
		r.resolve("latency", h, r.now, "slack", "pagerduty")
		for range 5 {
			r.step(time.Second)
		}
		if got, want := r.events("resolve"), map[bool]int{true: 1, false: 0}[i == len(hosts)-1]; got != want {
			t.Fatalf("after %d of 4 resolved: %d PagerDuty resolves, want %d", i+1, got, want)
		}
	}
	if r.posts("chat.update", "RESOLVED") != 1 || r.pd.Incidents() != 1 {
		t.Fatalf("the group's Slack message must be marked resolved once: %+v", r.slack.Posts())
	}
}

// The webhook payload is versioned and signed over a timestamp; a 503 with
// Retry-After is retried no sooner; the incoming-webhook Slack works too.
func TestWebhookSignedAndRetried(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	var sigs []string
	fail := true
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			w.Header().Set("Retry-After", "20")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		bodies, sigs = append(bodies, b), append(sigs, r.Header.Get(notifiers.HeaderSignature))
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	sl := testsaas.NewSlack(t, slackToken)
	st, _ := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	defer st.Close()
	cfg := &config.Config{Notifiers: []config.Notifier{
		{Name: "hook", Webhook: &config.Webhook{URL: srv.URL, SecretEnv: "HOOK_SECRET"}},
		{Name: "incoming", Slack: &config.Slack{WebhookURLEnv: "SLACK_HOOK"}},
	}}
	d, err := notifiers.New(cfg, "", func(k string) string {
		if k == "SLACK_HOOK" {
			return sl.WebhookURL
		}
		return env(k)
	}, notifiers.Options{Store: st, Jitter: func() float64 { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := json.Marshal(assertd.Notice{Version: 1, Kind: assertd.NoticeInfo, Assert: "backup", Reason: "fixed by restore-check", At: t0})
	st.Enqueue(context.Background(), assertd.Message{Key: "k1", Channel: "hook", DedupKey: "backup/x", Kind: "info", Payload: string(n), Created: t0},
		assertd.Message{Key: "k2", Channel: "incoming", DedupKey: "backup/x", Kind: "info", Payload: string(n), Created: t0})
	for s := range 25 {
		d.DeliverDue(context.Background(), t0.Add(time.Duration(s)*time.Second))
		mu.Lock()
		got := len(bodies)
		mu.Unlock()
		if got > 0 && s < 20 {
			t.Fatalf("retried after %ds, before the Retry-After of 20s", s)
		}
	}
	if len(bodies) != 1 {
		t.Fatalf("%d webhook deliveries", len(bodies))
	}
	if err := notifiers.Verify([]byte(hookSecret), sigs[0], bodies[0], t0.Add(20*time.Second), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := notifiers.Verify([]byte("wrong"), sigs[0], bodies[0], t0.Add(20*time.Second), 5*time.Minute); err == nil {
		t.Fatal("a wrong secret verified")
	}
	if err := notifiers.Verify([]byte(hookSecret), sigs[0], bodies[0], t0.Add(time.Hour), 5*time.Minute); err == nil {
		t.Fatal("a replay an hour later verified")
	}
	var p notifiers.WebhookPayload
	if json.Unmarshal(bodies[0], &p); p.Version != 1 || p.ID != "k1" || p.Kind != "info" || len(p.Notices) != 1 {
		t.Fatalf("payload %+v", p)
	}
	if posts := sl.Posts(); len(posts) != 1 || posts[0].Method != "webhook" || !strings.Contains(posts[0].Text, "INFO: backup") {
		t.Fatalf("incoming webhook: %+v", posts)
	}
}
