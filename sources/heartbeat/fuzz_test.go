package heartbeat

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/assertd/assertd/asserts"
)

// pathHeartbeat guesses which heartbeat a ping path names, for the fuzz
// check that only declared heartbeats are ever pinged.
func pathHeartbeat(p string, tr *Tracker) string {
	segs := strings.Split(strings.TrimPrefix(p, "/ping/"), "/")
	for _, s := range segs {
		if tr.Known(s) {
			return s
		}
		if strings.EqualFold(s, jobUUID) {
			return "by-uuid"
		}
	}
	return ""
}

// FuzzPingHandler sends arbitrary methods, paths, queries, bodies and keys to
// the ping handler, in every URL form (name and key, project key and name,
// uuid): it must never panic, answer only 200/4xx/503 with a small body,
// never show a key or a uuid, and store only bounded, valid bodies.
func FuzzPingHandler(f *testing.F) {
	seeds := []struct {
		method      uint8
		path, query string
		body        []byte
		key         string
	}{
		{0, "/ping/job", "", nil, ""},
		{1, "/ping/job/start", "rid=0b7d2f4e-9c1a-4f5e-8d3b-2a6c9e1f7b40", []byte("starting"), ""},
		{1, "/ping/job/fail", "", []byte("error: disk full\x00\xff"), ""},
		{2, "/ping/job/3", "", nil, ""},
		{0, "/ping/job/256", "", nil, ""},
		{0, "/ping/job/0", "rid=a&rid=b", nil, ""},
		{0, "/ping/locked", "key=" + testKey, nil, ""},
		{1, "/ping/locked/start", "", nil, testKey},
		{1, "/ping/locked", "key=nope", nil, "also-nope"},
		{0, "/ping/nope", "", nil, ""},
		{3, "/ping/job", "", []byte("x"), ""},
		{0, "/ping/%2e%2e/job", "", nil, ""},
		{0, "/ping/job/../locked", "", nil, ""},
		{0, "/ping/a%2Fb", "x=%zz", nil, ""},
		{1, "/ping/job", "", bytes.Repeat([]byte("é"), MaxBody), ""},
		{0, "", "", nil, ""},
		{0, "/ping/" + projectKey + "/plain", "", nil, ""},
		{1, "/ping/" + projectKey + "/own/start", "rid=r1", []byte("go"), ""},
		{1, "/ping/" + projectKey + "/by-uuid/log", "", []byte("note"), ""},
		{0, "/ping/" + projectKey + "/nope", "create=1", nil, ""},
		{0, "/ping/" + projectKey + "/plain/7", "", nil, ""},
		{0, "/ping/wrong-key-0123456789/plain", "", nil, ""},
		{0, "/ping/" + jobUUID, "", nil, ""},
		{1, "/ping/" + jobUUID + "/fail", "", []byte("boom"), ""},
		{0, "/ping/" + jobUUID + "/x/y", "", nil, ""},
		{0, "/ping/plain", "key=" + projectKey, nil, ""},
		{0, "/ping/own", "", nil, testKey},
		{0, "/ping/open/log", "", nil, ""},
		{1, "/ping/open", "", bytes.Repeat([]byte("x"), MaxBody+1), ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.body, s.key)
	}
	tr, h, store, clk := handlerFixture(f)
	atr, ah, aclk := authFixture(f, asserts.Pings{KeyEnv: "PING_KEY"})
	step := 0
	f.Fuzz(func(t *testing.T, m uint8, path, query string, body []byte, key string) {
		methods := []string{"GET", "POST", "HEAD", "PUT", "OPTIONS", "DELETE"}
		method := methods[int(m)%len(methods)]
		req, err := http.NewRequest(method, "http://assertd.test"+path+"?"+query, bytes.NewReader(body))
		if err != nil {
			return // not a request a server could receive
		}
		if key != "" {
			req.Header.Set(KeyHeader, key)
		}
		store.setDown(m >= 250) // now and then the store fails
		step++
		clk.Set(t0.Add(time.Duration(step) * time.Second))
		aclk.Set(t0.Add(time.Duration(step) * time.Second))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		req2, _ := http.NewRequest(method, "http://assertd.test"+path+"?"+query, bytes.NewReader(body))
		if key != "" {
			req2.Header.Set(KeyHeader, key)
		}
		w2 := httptest.NewRecorder()
		ah.ServeHTTP(w2, req2)
		if c := w2.Code; c != 200 && c != 400 && c != 401 && c != 403 && c != 404 && c != 405 && c != 413 {
			t.Fatalf("auth fixture: status %d for %s %q ? %q", c, method, path, query)
		}
		for _, secret := range []string{projectKey, testKey, jobUUID} {
			if strings.Contains(w2.Body.String(), secret) {
				t.Fatalf("the answer shows a secret: %s", w2.Body)
			}
		}
		if w2.Code < 300 && !atr.Known(pathHeartbeat(path, atr)) {
			t.Fatalf("%d for a ping of no declared heartbeat: %s", w2.Code, path)
		}
		switch w.Code {
		case 200:
			if got := w.Body.String(); got != "OK" && (method != "HEAD" || got != "") {
				t.Fatalf("200 with body %q", got)
			}
		case 400, 401, 403, 404, 405, 413, 503:
		default:
			t.Fatalf("status %d for %s %q ? %q", w.Code, method, path, query)
		}
		if w.Body.Len() > 1024 {
			t.Fatalf("answer of %d bytes", w.Body.Len())
		}
		if strings.Contains(w.Body.String(), testKey) {
			t.Fatalf("the answer shows the key: %s", w.Body)
		}
		for _, name := range []string{"job", "locked"} {
			pings, err := store.RecentPings(context.Background(), name, 1)
			if err != nil || len(pings) == 0 {
				continue
			}
			b := pings[0].Body
			if len(b) > MaxBody+len(TruncatedMarker) || !utf8.ValidString(b) || strings.Contains(b, "\x00") {
				t.Fatalf("stored body of %d bytes (valid %v)", len(b), utf8.ValidString(b))
			}
			st, _ := tr.Status(name, clk.Now())
			if st.State == "" {
				t.Fatalf("no state for %s", name)
			}
		}
	})
}
