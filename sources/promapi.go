package sources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

// PromAPI serves Prometheus' HTTP query API (/api/v1/query, query_range,
// series, labels, label/{name}/values) over the embedded TSDB, in
// Prometheus' JSON format, for Grafana, promtool and any PromQL client.
type PromAPI struct {
	e   *Embedded
	now func() time.Time
}

// PromAPI returns the query API of the embedded TSDB; now is the default
// evaluation time.
func (e *Embedded) PromAPI(now func() time.Time) *PromAPI {
	if now == nil {
		now = time.Now
	}
	return &PromAPI{e: e, now: now}
}

type apiResponse struct {
	Status    string `json:"status"`
	Data      any    `json:"data,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	Error     string `json:"error,omitempty"`
}

func writeAPI(w http.ResponseWriter, status int, r apiResponse) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(r)
}

func badData(w http.ResponseWriter, format string, args ...any) {
	writeAPI(w, http.StatusBadRequest, apiResponse{Status: "error", ErrorType: "bad_data", Error: fmt.Sprintf(format, args...)})
}

func execError(w http.ResponseWriter, err error) {
	typ, code := "execution", http.StatusUnprocessableEntity
	var (
		eqc promql.ErrQueryCanceled
		eqt promql.ErrQueryTimeout
	)
	switch {
	case errors.As(err, &eqc):
		typ, code = "canceled", http.StatusServiceUnavailable
	case errors.As(err, &eqt):
		typ, code = "timeout", http.StatusServiceUnavailable
	}
	writeAPI(w, code, apiResponse{Status: "error", ErrorType: typ, Error: err.Error()})
}

// parseTime reads a time as Prometheus does: Unix seconds or RFC 3339.
func parseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1000))*int64(time.Millisecond)).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

func parseStep(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, fmt.Errorf("zero or negative query resolution step widths are not accepted. Try a positive integer")
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := model.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
	}
	return time.Duration(d), nil
}

// Query is GET|POST /api/v1/query.
func (p *PromAPI) Query(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		badData(w, "%v", err)
		return
	}
	ts, err := parseTime(r.FormValue("time"), p.now())
	if err != nil {
		badData(w, "invalid parameter \"time\": %v", err)
		return
	}
	q, err := p.e.engine.NewInstantQuery(r.Context(), p.e.db, nil, r.FormValue("query"), ts)
	if err != nil {
		badData(w, "invalid parameter \"query\": %v", err)
		return
	}
	p.exec(r.Context(), w, q)
}

// QueryRange is GET|POST /api/v1/query_range.
func (p *PromAPI) QueryRange(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		badData(w, "%v", err)
		return
	}
	start, err := parseTime(r.FormValue("start"), time.Time{})
	if err != nil || r.FormValue("start") == "" {
		badData(w, "invalid parameter \"start\": %v", orMissing(err))
		return
	}
	end, err := parseTime(r.FormValue("end"), time.Time{})
	if err != nil || r.FormValue("end") == "" {
		badData(w, "invalid parameter \"end\": %v", orMissing(err))
		return
	}
	if end.Before(start) {
		badData(w, "invalid parameter \"end\": end timestamp must not be before start time")
		return
	}
	step, err := parseStep(r.FormValue("step"))
	if err != nil {
		badData(w, "invalid parameter \"step\": %v", err)
		return
	}
	if end.Sub(start)/step > 11000 {
		badData(w, "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
		return
	}
	q, err := p.e.engine.NewRangeQuery(r.Context(), p.e.db, nil, r.FormValue("query"), start, end, step)
	if err != nil {
		badData(w, "invalid parameter \"query\": %v", err)
		return
	}
	p.exec(r.Context(), w, q)
}

func orMissing(err error) error {
	if err == nil {
		return errors.New("missing")
	}
	return err
}

func (p *PromAPI) exec(ctx context.Context, w http.ResponseWriter, q promql.Query) {
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		execError(w, res.Err)
		return
	}
	writeAPI(w, http.StatusOK, apiResponse{Status: "success", Data: map[string]any{"resultType": res.Value.Type(), "result": jsonValue(res.Value)}})
}

// sample is [unix seconds, "value"], as Prometheus writes it.
func sample(t int64, f float64) [2]any {
	return [2]any{float64(t) / 1000, strconv.FormatFloat(f, 'f', -1, 64)}
}

func metric(ls labels.Labels) map[string]string { return ls.Map() }

func jsonValue(v parser.Value) any {
	switch v := v.(type) {
	case promql.Vector:
		out := make([]map[string]any, 0, len(v))
		for _, s := range v {
			if s.H != nil {
				continue // native histograms are not served
			}
			out = append(out, map[string]any{"metric": metric(s.Metric), "value": sample(s.T, s.F)})
		}
		return out
	case promql.Matrix:
		out := make([]map[string]any, 0, len(v))
		for _, s := range v {
			vals := make([][2]any, 0, len(s.Floats))
			for _, f := range s.Floats {
				vals = append(vals, sample(f.T, f.F))
			}
			out = append(out, map[string]any{"metric": metric(s.Metric), "values": vals})
		}
		return out
	case promql.Scalar:
		return sample(v.T, v.V)
	case promql.String:
		return [2]any{float64(v.T) / 1000, v.V}
	}
	return nil
}

// matchers reads match[] (required when need).
func matchers(r *http.Request, need bool) ([][]*labels.Matcher, error) {
	ms := r.Form["match[]"]
	if len(ms) == 0 && need {
		return nil, errors.New("no match[] parameter provided")
	}
	var out [][]*labels.Matcher
	for _, s := range ms {
		m, err := selectorParser.ParseMetricSelector(s)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// window reads start and end (default: all time).
func window(r *http.Request) (int64, int64, error) {
	start, err := parseTime(r.FormValue("start"), time.UnixMilli(math.MinInt64/2))
	if err != nil {
		return 0, 0, fmt.Errorf("invalid parameter \"start\": %w", err)
	}
	end, err := parseTime(r.FormValue("end"), time.UnixMilli(math.MaxInt64/2))
	if err != nil {
		return 0, 0, fmt.Errorf("invalid parameter \"end\": %w", err)
	}
	return start.UnixMilli(), end.UnixMilli(), nil
}

// Series is GET|POST /api/v1/series.
func (p *PromAPI) Series(w http.ResponseWriter, r *http.Request) {
	sets, q, mint, maxt, ok := p.open(w, r, true)
	if !ok {
		return
	}
	defer q.Close()
	seen := map[uint64]bool{}
	out := []map[string]string{}
	hints := &storage.SelectHints{Start: mint, End: maxt, Func: "series"}
	for _, ms := range sets {
		ss := q.Select(r.Context(), false, hints, ms...)
		for ss.Next() {
			ls := ss.At().Labels()
			if h := ls.Hash(); !seen[h] {
				seen[h] = true
				out = append(out, ls.Map())
			}
		}
		if err := ss.Err(); err != nil {
			execError(w, err)
			return
		}
	}
	writeAPI(w, http.StatusOK, apiResponse{Status: "success", Data: out})
}

// open reads a series or label request's match[] selectors (required or
// not) and its window, and opens a querier over the window; false when it
// answered the request with the error.
func (p *PromAPI) open(w http.ResponseWriter, r *http.Request, required bool) ([][]*labels.Matcher, storage.Querier, int64, int64, bool) {
	if err := r.ParseForm(); err != nil {
		badData(w, "%v", err)
		return nil, nil, 0, 0, false
	}
	sets, err := matchers(r, required)
	if err != nil {
		badData(w, "%v", err)
		return nil, nil, 0, 0, false
	}
	mint, maxt, err := window(r)
	if err != nil {
		badData(w, "%v", err)
		return nil, nil, 0, 0, false
	}
	q, err := p.e.db.Querier(mint, maxt)
	if err != nil {
		execError(w, err)
		return nil, nil, 0, 0, false
	}
	return sets, q, mint, maxt, true
}

// Labels is GET|POST /api/v1/labels.
func (p *PromAPI) Labels(w http.ResponseWriter, r *http.Request) {
	p.names(w, r, "")
}

// LabelValues is GET /api/v1/label/{name}/values.
func (p *PromAPI) LabelValues(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !model.LegacyValidation.IsValidLabelName(name) {
		badData(w, "invalid label name: %q", name)
		return
	}
	p.names(w, r, name)
}

// names answers the label names, or the values of label name.
func (p *PromAPI) names(w http.ResponseWriter, r *http.Request, name string) {
	sets, q, _, _, ok := p.open(w, r, false)
	if !ok {
		return
	}
	defer q.Close()
	var err error
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	var all []string
	hints := &storage.LabelHints{}
	for _, ms := range sets {
		var vals []string
		if name == "" {
			vals, _, err = q.LabelNames(r.Context(), hints, ms...)
		} else {
			vals, _, err = q.LabelValues(r.Context(), name, hints, ms...)
		}
		if err != nil {
			execError(w, err)
			return
		}
		all = append(all, vals...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	if all == nil {
		all = []string{}
	}
	writeAPI(w, http.StatusOK, apiResponse{Status: "success", Data: all})
}

// PromAPIPaths are the paths of the query API and whether they take POST.
var PromAPIPaths = []string{"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels", "/api/v1/label/{name}/values"}

// Handler returns the handler of one of PromAPIPaths.
func (p *PromAPI) Handler(path string) http.HandlerFunc {
	switch {
	case path == "/api/v1/query":
		return p.Query
	case path == "/api/v1/query_range":
		return p.QueryRange
	case path == "/api/v1/series":
		return p.Series
	case path == "/api/v1/labels":
		return p.Labels
	case strings.HasPrefix(path, "/api/v1/label/"):
		return p.LabelValues
	}
	return nil
}

var selectorParser = parser.NewParser(parser.Options{})
