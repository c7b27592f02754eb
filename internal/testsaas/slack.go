package testsaas

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/slack-go/slack/slacktest"
)

// Post is one chat.postMessage or chat.update (or incoming-webhook post)
// the fake Slack accepted.
type Post struct {
	Method   string // chat.postMessage, chat.update, webhook or response_url
	Channel  string
	TS       string // the message's ts (for chat.update, the one updated; for response_url, the one clicked)
	ThreadTS string
	Text     string
	Blocks   string // the blocks as JSON
	// Of a response_url post: whether it replaces the clicked message, or
	// is shown to the clicking user only.
	Replace   bool
	Ephemeral bool
}

// Slack fakes the Slack Web API with slacktest, plus an incoming webhook
// at /webhook/… . Tokens other than Token are refused with invalid_auth.
type Slack struct {
	faults
	APIURL     string // the api_url to configure
	WebhookURL string
	Token      string

	srv   *slacktest.Server
	mu    sync.Mutex
	posts []Post
	seq   int
}

// NewSlack starts the fake on 127.0.0.1; it stops with the test.
func NewSlack(t testing.TB, token string) *Slack {
	s := &Slack{Token: token}
	s.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", s.handler("chat.postMessage"))
		c.Handle("/chat.update", s.handler("chat.update"))
		c.Handle("/webhook/", s.handler("webhook"))
		c.Handle("/response/", s.handler("response_url"))
	})
	s.srv.Start()
	t.Cleanup(s.srv.Stop)
	s.APIURL = s.srv.GetAPIURL()
	s.WebhookURL = s.APIURL + "webhook/T000/B000/secretpart"
	return s
}

func (s *Slack) handler(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.serveFault(w, r) {
			return
		}
		var p Post
		p.Method = method
		if method == "webhook" || method == "response_url" {
			var body struct {
				Text            string          `json:"text"`
				Blocks          json.RawMessage `json:"blocks"`
				ReplaceOriginal bool            `json:"replace_original"`
				ResponseType    string          `json:"response_type"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				http.Error(w, "invalid_payload", http.StatusBadRequest)
				return
			}
			p.Text, p.Blocks = body.Text, string(body.Blocks)
			if method == "response_url" {
				p.TS = strings.TrimPrefix(r.URL.Path, "/response/")
				p.Replace, p.Ephemeral = body.ReplaceOriginal, body.ResponseType == "ephemeral"
			}
			s.record(p)
			_, _ = w.Write([]byte("ok"))
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+s.Token && r.FormValue("token") != s.Token {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		if err := r.ParseForm(); err != nil {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_form_data"})
			return
		}
		v := r.Form
		p.Channel, p.ThreadTS, p.Text, p.Blocks, p.TS = v.Get("channel"), v.Get("thread_ts"), v.Get("text"), v.Get("blocks"), v.Get("ts")
		if p.Channel == "" || (method == "chat.update" && p.TS == "") {
			writeJSON(w, map[string]any{"ok": false, "error": "channel_not_found"})
			return
		}
		channelID := "C" + strings.ToUpper(strings.TrimPrefix(p.Channel, "#"))
		if strings.HasPrefix(p.Channel, "C") {
			channelID = p.Channel
		}
		if method == "chat.postMessage" {
			p.TS = s.nextTS()
		}
		p.Channel = channelID
		s.record(p)
		writeJSON(w, map[string]any{"ok": true, "channel": channelID, "ts": p.TS, "text": p.Text})
	}
}

func (s *Slack) nextTS() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return fmt.Sprintf("1700000000.%06d", s.seq)
}

func (s *Slack) record(p Post) { s.mu.Lock(); s.posts = append(s.posts, p); s.mu.Unlock() }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Posts returns what the fake accepted so far.
func (s *Slack) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Post(nil), s.posts...)
}

// TopLevel returns the accepted chat.postMessage calls that started a
// thread (not replies).
func (s *Slack) TopLevel() []Post {
	var out []Post
	for _, p := range s.Posts() {
		if p.Method == "chat.postMessage" && p.ThreadTS == "" {
			out = append(out, p)
		}
	}
	return out
}
