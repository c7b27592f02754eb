package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRemoteWriteAuth fuzzes the listener's remote-write route with auth
// on: the body and the Authorization header. Without a write or admin
// token nothing is written (401 or 403), whatever the body; with one the
// answer is 204 or a 4xx with a JSON error; nothing panics or answers 5xx.
func FuzzRemoteWriteAuth(f *testing.F) {
	e := newEnv(f)
	now := e.clock.Now()
	good := remoteWrite(f, now, []string{"__name__", "fuzz_probe", "job", "api"})
	f.Add(good, "")
	f.Add(good, "Bearer "+adminSecret)
	f.Add(good, "Bearer "+readSecret)
	f.Add(good, "Basic cHJvbTpwcm9t")
	f.Add(good, "Bearer ")
	f.Add([]byte("garbage"), "Bearer "+adminSecret)
	f.Add([]byte{}, "bearer "+adminSecret)
	h := e.app.Handler()
	f.Fuzz(func(t *testing.T, body []byte, auth string) {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		secret, bearer := strings.CutPrefix(auth, "Bearer ")
		writer := bearer && strings.TrimSpace(secret) == adminSecret
		switch {
		case !writer && w.Code != http.StatusUnauthorized && w.Code != http.StatusForbidden:
			t.Fatalf("auth %q: %d %s", auth, w.Code, w.Body)
		case w.Code >= 500:
			t.Fatalf("auth %q: %d %s", auth, w.Code, w.Body)
		case w.Code != http.StatusNoContent && (!json.Valid(w.Body.Bytes()) || !bytes.Contains(w.Body.Bytes(), []byte(`"error":`))):
			t.Fatalf("auth %q: %d %q", auth, w.Code, w.Body)
		}
	})
}
