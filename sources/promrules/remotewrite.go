package promrules

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
)

// RemoteWrite is where the recording rules of rules that query a remote
// source are written: a Prometheus remote-write endpoint.
type RemoteWrite struct {
	URL     string
	Token   string // bearer token; empty: none
	Timeout time.Duration
	Client  *http.Client // default http.DefaultClient
}

// SplitAppendable writes ALERTS and ALERTS_FOR_STATE to local (where the
// for state is restored from) and every other sample (the recording rules')
// to remote, one remote-write request per group evaluation, sent when the
// evaluation commits.
func SplitAppendable(local storage.Appendable, remote RemoteWrite) storage.Appendable {
	return splitAppendable{local: local, remote: remote}
}

type splitAppendable struct {
	local  storage.Appendable
	remote RemoteWrite
}

func (s splitAppendable) Appender(ctx context.Context) storage.Appender {
	return &splitAppender{Appender: s.local.Appender(ctx), ctx: ctx, remote: s.remote, series: map[string]int{}}
}

type splitAppender struct {
	storage.Appender // the local one, for ALERTS, ALERTS_FOR_STATE and what rules never call
	ctx              context.Context
	remote           RemoteWrite
	req              prompb.WriteRequest
	series           map[string]int // index in req.Timeseries by labels
}

func isAlertSeries(l labels.Labels) bool {
	n := l.Get(model.MetricNameLabel)
	return n == "ALERTS" || n == "ALERTS_FOR_STATE"
}

func (a *splitAppender) ts(l labels.Labels) *prompb.TimeSeries {
	k := l.String()
	i, ok := a.series[k]
	if !ok {
		i = len(a.req.Timeseries)
		a.series[k] = i
		a.req.Timeseries = append(a.req.Timeseries, prompb.TimeSeries{Labels: prompb.FromLabels(l, nil)})
	}
	return &a.req.Timeseries[i]
}

func (a *splitAppender) Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	if isAlertSeries(l) {
		return a.Appender.Append(ref, l, t, v)
	}
	s := a.ts(l)
	s.Samples = append(s.Samples, prompb.Sample{Timestamp: t, Value: v})
	return 0, nil
}

func (a *splitAppender) AppendHistogram(ref storage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	if isAlertSeries(l) {
		return a.Appender.AppendHistogram(ref, l, t, h, fh)
	}
	s := a.ts(l)
	if h != nil {
		s.Histograms = append(s.Histograms, prompb.FromIntHistogram(t, h))
	} else {
		s.Histograms = append(s.Histograms, prompb.FromFloatHistogram(t, fh))
	}
	return 0, nil
}

func (a *splitAppender) Commit() error {
	err := a.Appender.Commit()
	if len(a.req.Timeseries) == 0 {
		return err
	}
	if rerr := a.remote.send(a.ctx, &a.req); rerr != nil {
		return rerr
	}
	return err
}

func (a *splitAppender) Rollback() error {
	a.req.Timeseries, a.series = nil, map[string]int{}
	return a.Appender.Rollback()
}

func (rw RemoteWrite) send(ctx context.Context, req *prompb.WriteRequest) error {
	raw, err := req.Marshal()
	if err != nil {
		return err
	}
	timeout := rw.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, rw.URL, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return fmt.Errorf("remote_write: %w", err)
	}
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	hr.Header.Set("User-Agent", "assertd")
	if rw.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+rw.Token)
	}
	client := rw.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hr)
	if err != nil {
		return fmt.Errorf("remote_write to %s: %w", redact(rw.URL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("remote_write to %s: %s: %s", redact(rw.URL), resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// redact keeps a URL's credentials, if any, out of messages.
func redact(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "…" + u[i:]
		}
	}
	return u
}
