package sources

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/snappy"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"

	"github.com/assertd/assertd"
)

// Remote-write limits: a request beyond them is refused whole.
const (
	MaxWriteBodyBytes    = 16 << 20 // compressed
	MaxWriteDecodedBytes = 64 << 20
	MaxLabelsPerSeries   = 64
	MaxLabelValueBytes   = 4096
	maxAhead             = 10 * time.Minute
)

// WriteHandler receives Prometheus remote-write 1.0 (snappy-compressed
// prompb.WriteRequest) at POST /api/v1/write. A request is validated whole
// before anything is appended and committed in one transaction: a malformed
// or oversized request is answered 400/413 and writes nothing. now is the
// clock used to refuse samples from the far future.
func WriteHandler(app storage.Appendable, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "remote write takes POST")
			return
		}
		if v := r.Header.Get("Content-Type"); strings.Contains(v, "io.prometheus.write.v2") {
			writeError(w, http.StatusUnsupportedMediaType, "remote write 2.0 is not supported: set protobuf_message: prometheus.WriteRequest in remote_write")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWriteBodyBytes))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes: lower queue_config.max_samples_per_send", MaxWriteBodyBytes))
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
			return
		}
		req, err := decodeWriteRequest(body)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		series, err := validateWrite(req, now())
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := appendAll(r, app, req, series); err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, assertd.ErrSourceUnavailable) {
				status = http.StatusServiceUnavailable // retryable
			}
			writeError(w, status, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func decodeWriteRequest(body []byte) (*prompb.WriteRequest, error) {
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, fmt.Errorf("body is not snappy-compressed: %v", err)
	}
	if n > MaxWriteDecodedBytes {
		return nil, fmt.Errorf("decoded request is %d bytes, over the limit of %d", n, MaxWriteDecodedBytes)
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("body is not snappy-compressed: %v", err)
	}
	var req prompb.WriteRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("body is not a remote-write request: %v", err)
	}
	return &req, nil
}

// validateWrite checks every series and returns their label sets.
func validateWrite(req *prompb.WriteRequest, now time.Time) ([]labels.Labels, error) {
	out := make([]labels.Labels, len(req.Timeseries))
	limit := now.Add(maxAhead).UnixMilli()
	for i, ts := range req.Timeseries {
		if len(ts.Labels) == 0 || len(ts.Labels) > MaxLabelsPerSeries {
			return nil, fmt.Errorf("series %d has %d labels; between 1 and %d are allowed", i, len(ts.Labels), MaxLabelsPerSeries)
		}
		b := labels.NewScratchBuilder(len(ts.Labels))
		for _, l := range ts.Labels {
			if err := assertd.CheckLabelName(l.Name); err != nil && l.Name != model.MetricNameLabel {
				return nil, fmt.Errorf("series %d: %v", i, err)
			}
			if len(l.Value) > MaxLabelValueBytes || l.Value == "" {
				return nil, fmt.Errorf("series %d: label %s has an empty or over-long value", i, l.Name)
			}
			b.Add(l.Name, l.Value)
		}
		b.Sort()
		ls := b.Labels()
		if ls.Get(model.MetricNameLabel) == "" {
			return nil, fmt.Errorf("series %d has no metric name (__name__)", i)
		}
		if name, dup := ls.HasDuplicateLabelNames(); dup {
			return nil, fmt.Errorf("series %d: duplicate label %s", i, name)
		}
		for _, s := range ts.Samples {
			if s.Timestamp > limit {
				return nil, fmt.Errorf("series %s: sample at %s is more than %s ahead", ls, time.UnixMilli(s.Timestamp).UTC(), maxAhead)
			}
		}
		for _, h := range ts.Histograms {
			if h.Timestamp > limit {
				return nil, fmt.Errorf("series %s: histogram at %s is more than %s ahead", ls, time.UnixMilli(h.Timestamp).UTC(), maxAhead)
			}
		}
		out[i] = ls
	}
	return out, nil
}

func appendAll(r *http.Request, db storage.Appendable, req *prompb.WriteRequest, series []labels.Labels) error {
	app := db.Appender(r.Context())
	fail := func(err error) error {
		_ = app.Rollback()
		return err
	}
	for i, ts := range req.Timeseries {
		for _, s := range ts.Samples {
			if _, err := app.Append(0, series[i], s.Timestamp, s.Value); err != nil {
				return fail(fmt.Errorf("series %s at %d: %v; nothing was written", series[i], s.Timestamp, err))
			}
		}
		for _, h := range ts.Histograms {
			var err error
			if h.IsFloatHistogram() {
				_, err = app.AppendHistogram(0, series[i], h.Timestamp, nil, h.ToFloatHistogram())
			} else {
				_, err = app.AppendHistogram(0, series[i], h.Timestamp, h.ToIntHistogram(), nil)
			}
			if err != nil {
				return fail(fmt.Errorf("series %s at %d: %v; nothing was written", series[i], h.Timestamp, err))
			}
		}
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("%w: committing samples: %v", assertd.ErrSourceUnavailable, err)
	}
	return nil
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
