package sources

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/assertd/assertd/config"
)

// The remote source's auth, headers and TLS options reach the server as
// configured (a Prometheus-API stand-in that checks them; the query path
// itself is tested against a real Prometheus).
func TestRemoteAuthHeadersAndTLS(t *testing.T) {
	var got http.Header
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"x"},"value":[1700000000,"7"]}]}}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	os.WriteFile(filepath.Join(dir, "token"), []byte("file-token\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "password"), []byte("pw-from-file"), 0o600)
	env := func(k string) string { return map[string]string{"TOKEN": "env-token", "PW": "pw-from-env"}[k] }

	for _, tc := range []struct {
		name string
		c    config.Prometheus
		want map[string]string
	}{
		{"bearer from env and a tenant header", config.Prometheus{BearerTokenEnv: "TOKEN", Headers: map[string]string{"X-Scope-OrgID": "tenant-a"}},
			map[string]string{"Authorization": "Bearer env-token", "X-Scope-Orgid": "tenant-a"}},
		{"bearer from a file (relative to the config)", config.Prometheus{BearerTokenFile: "token"},
			map[string]string{"Authorization": "Bearer file-token"}},
		{"basic auth with a password file", config.Prometheus{BasicAuth: &config.BasicAuth{Username: "assertd", PasswordFile: "password"}},
			map[string]string{"Authorization": "Basic YXNzZXJ0ZDpwdy1mcm9tLWZpbGU="}},
		{"basic auth with a password from env", config.Prometheus{BasicAuth: &config.BasicAuth{Username: "assertd", PasswordEnv: "PW"}},
			map[string]string{"Authorization": "Basic YXNzZXJ0ZDpwdy1mcm9tLWVudg=="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.Name, c.URL, c.TLS.CAFile = "p", srv.URL, "ca.pem"
			r, err := NewRemote(c, dir, env)
			if err != nil {
				t.Fatal(err)
			}
			v, err := r.Query(context.Background(), "up", time.Unix(1700000000, 0))
			if err != nil || len(v.Samples) != 1 || v.Samples[0].Value != 7 {
				t.Fatalf("%+v %v", v, err)
			}
			for k, want := range tc.want {
				if got.Get(k) != want {
					t.Errorf("header %s = %q, want %q", k, got.Get(k), want)
				}
			}
		})
	}
	// Without the CA, the server's certificate is refused: unavailable, not data.
	r, _ := NewRemote(config.Prometheus{Name: "p", URL: srv.URL}, dir, env)
	if _, err := r.Query(context.Background(), "up", time.Now()); err == nil {
		t.Fatal("an unknown certificate was accepted")
	}
}
