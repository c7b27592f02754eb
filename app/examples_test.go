package app

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/store/sqlite"
)

// emptySource stands in for a remote Prometheus that holds nothing.
type emptySource struct{}

func (emptySource) Query(context.Context, string, time.Time) (assertd.Vector, error) {
	return assertd.Vector{}, nil
}

// TestExamplesRefuseAnonymousWrites: every example set, built as assertd run
// builds it, answers an anonymous remote-write of a series its asserts read
// with 401, appends nothing and starts no run.
func TestExamplesRefuseAnonymousWrites(t *testing.T) {
	files, err := filepath.Glob("../examples/*/assertd.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) {
			dir := t.TempDir()
			cfg := copyExample(t, filepath.Dir(f), dir)
			ctx := context.Background()
			st, err := sqlite.Open(ctx, filepath.Join(dir, "assertd.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			a, err := New(ctx, Options{
				ConfigPath: cfg, DataDir: dir, Store: st, Listen: "127.0.0.1:0", NoScrape: true,
				Logger:     slog.New(slog.DiscardHandler),
				Registerer: prometheus.NewRegistry(),
				RemoteSource: func(config.Prometheus, asserts.Querier) (asserts.Querier, error) {
					return emptySource{}, nil
				},
				Getenv: func(k string) string { return "secret-of-" + k + "-0123456789" },
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Stop(context.Background()) })
			now := time.Now()
			for _, metric := range []string{"up", "http_requests_total", "pg_up", "demo_requests_total"} {
				req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
					Labels:  []prompb.Label{{Name: "__name__", Value: metric}, {Name: "instance", Value: "injected"}},
					Samples: []prompb.Sample{{Value: 0, Timestamp: now.UnixMilli()}},
				}}}
				raw, err := req.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				r := httptest.NewRequest("POST", "/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
				r.RemoteAddr = "127.0.0.1:40000" // on loopback, as an attacker on the machine
				r.Header.Set("Content-Encoding", "snappy")
				r.Header.Set("Content-Type", "application/x-protobuf")
				w := httptest.NewRecorder()
				a.Handler().ServeHTTP(w, r)
				if w.Code != http.StatusUnauthorized {
					t.Fatalf("anonymous remote-write of %s: %d %s", metric, w.Code, w.Body)
				}
			}
			if emb := a.Embedded(); emb != nil {
				v, err := emb.Query(ctx, `{instance="injected"}`, now)
				if err != nil || len(v.Samples) != 0 {
					t.Fatalf("anonymous series appended: %v %v", v, err)
				}
			}
			for _, in := range a.Engine().Instances() {
				if in.Labels["instance"] == "injected" {
					t.Fatalf("an instance from an anonymous series: %+v", in)
				}
			}
		})
	}
}

// copyExample copies an example set into dir with its secret files
// (/etc/assertd/…) moved under dir and filled with made-up secrets, and
// returns the path of its assertd.yaml.
func copyExample(t *testing.T, from, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(dir, "etc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for rest := text; ; {
			i := strings.Index(rest, "/etc/assertd/")
			if i < 0 {
				break
			}
			rest = rest[i+len("/etc/assertd/"):]
			name := rest[:strings.IndexAny(rest+"\n", " \n\"',}")]
			os.MkdirAll(etc, 0o700)
			os.WriteFile(filepath.Join(etc, name), []byte("secret-of-"+name+"-0123456789\n"), 0o600)
		}
		text = strings.ReplaceAll(text, "/etc/assertd/", etc+"/")
		if err := os.WriteFile(filepath.Join(dir, e.Name()), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "assertd.yaml")
}
