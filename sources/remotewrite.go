package sources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
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

// Writer is who remote-writes, as the listener authenticated them, and what
// they may write.
type Writer struct {
	Name string // a token's name, a basic-auth user, or "anonymous"
	// Matchers, when set, are selectors one of which each series must
	// match; a request with another series is refused whole (403).
	Matchers [][]*labels.Matcher
	// AllowNew, when set, is asked once per request whether the writer may
	// create n new series now; false refuses the request whole (429).
	AllowNew func(n int) bool
}

type writerKey struct{}

// WithWriter is the context of a remote-write request the listener has
// authenticated.
func WithWriter(ctx context.Context, w Writer) context.Context {
	return context.WithValue(ctx, writerKey{}, w)
}

// WriteHandler receives Prometheus remote-write 1.0 (snappy-compressed
// prompb.WriteRequest) at POST /api/v1/write. It serves only requests whose
// context carries a Writer (WithWriter): the listener authenticates them;
// others are answered 401. A request is validated whole before anything is
// appended and committed in one transaction: a malformed or oversized
// request is answered 400/413, series outside the writer's matchers 403 and
// too many new series 429, and then nothing is written. now is the clock
// used to refuse samples from the far future.
func WriteHandler(app storage.Appendable, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "remote write takes POST")
			return
		}
		wr, ok := r.Context().Value(writerKey{}).(Writer)
		if !ok {
			writeError(w, http.StatusUnauthorized, "remote write needs credentials")
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
		if err := wr.admit(series); err != nil {
			writeError(w, http.StatusForbidden, err.Error())
			return
		}
		if err := appendAll(r, app, req, series, wr); err != nil {
			if errors.Is(err, errTooManyNew) {
				writeError(w, http.StatusTooManyRequests, err.Error())
				return
			}
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
				return nil, fmt.Errorf("series %d: %v; nothing was written", i, err)
			}
			if l.Name == model.MetricNameLabel && !model.LegacyValidation.IsValidMetricName(l.Value) {
				return nil, fmt.Errorf("series %d: metric name %q is not valid: use letters, digits, _ and :, not starting with a digit; nothing was written", i, l.Value)
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

// admit checks that every series matches one of the writer's selectors.
func (wr Writer) admit(series []labels.Labels) error {
	if len(wr.Matchers) == 0 {
		return nil
	}
	for _, ls := range series {
		if !slices.ContainsFunc(wr.Matchers, func(ms []*labels.Matcher) bool { return matchAll(ms, ls) }) {
			return fmt.Errorf("%s may not write %s: it matches none of the token's write_matchers; nothing was written", wr.Name, ls)
		}
	}
	return nil
}

func matchAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

var errTooManyNew = errors.New("too many new series")

// countNew counts the series of a request that the TSDB does not hold yet.
// An appender that cannot tell counts every series as new.
func countNew(app storage.Appender, series []labels.Labels) int {
	g, ok := app.(storage.GetRef)
	seen := make(map[uint64]bool, len(series))
	n := 0
	for _, ls := range series {
		h := ls.Hash()
		if seen[h] {
			continue
		}
		seen[h] = true
		if !ok {
			n++
		} else if ref, _ := g.GetRef(ls, h); ref == 0 {
			n++
		}
	}
	return n
}

func appendAll(r *http.Request, db storage.Appendable, req *prompb.WriteRequest, series []labels.Labels, wr Writer) error {
	app := db.Appender(r.Context())
	fail := func(err error) error {
		_ = app.Rollback()
		return err
	}
	if wr.AllowNew != nil {
		if n := countNew(app, series); n > 0 && !wr.AllowNew(n) {
			return fail(fmt.Errorf("%w: %s may not create %d new series now (web.new_series_limit); nothing was written", errTooManyNew, wr.Name, n))
		}
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
