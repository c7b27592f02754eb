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
)

// FuzzPingHandler sends arbitrary methods, paths, queries, bodies and keys to
// the ping handler: it must never panic, answer only 200/4xx/503 with a small
// body, never show a key, and store only bounded, valid bodies.
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
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.body, s.key)
	}
	tr, h, store, clk := handlerFixture(f)
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
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
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
