package sources

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// FuzzWriteHandler: no body makes the remote-write receiver panic, and it
// always answers 204 or a 4xx with a JSON error.
func FuzzWriteHandler(f *testing.F) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	f.Add(writeRequest(f, series(now, 1, "__name__", "m", "job", "x")))
	f.Add(writeRequest(f, prompb.TimeSeries{}))
	f.Add([]byte("garbage"))
	f.Add([]byte{})
	e, err := OpenEmbedded(EmbeddedOptions{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close() })
	h := asWriter(WriteHandler(e.Appendable(), func() time.Time { return now }), Writer{Name: "fuzz"})
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body)))
		switch {
		case w.Code == http.StatusNoContent:
		case w.Code >= 400 && w.Code < 500 && bytes.HasPrefix(w.Body.Bytes(), []byte(`{"error":`)):
		default:
			t.Fatalf("status %d body %q", w.Code, w.Body.String())
		}
	})
}
