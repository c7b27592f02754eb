// Package amclient speaks Alertmanager's v2 API as a client: it creates
// and expires silences (while assertd fixes what an alert reports) and
// posts alerts (assertd's pages forwarded to Alertmanager).
package amclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/assertd/assertd"
)

// Client talks to one Alertmanager.
type Client struct {
	// URL is the Alertmanager's base URL, such as http://alertmanager:9093
	// (its --web.external-url, with any route prefix).
	URL  string
	HTTP *http.Client // default: a client with a 10s timeout
}

// Matcher is one matcher of a silence, as Alertmanager's API has it.
type Matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual bool   `json:"isEqual"`
}

// Silence is a silence to create.
type Silence struct {
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment"`
}

// Alert is an alert posted to Alertmanager.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Exactly returns the matchers that select exactly the alerts of this
// label set: one equality matcher per label.
func Exactly(ls assertd.Labels) []Matcher {
	out := make([]Matcher, 0, len(ls))
	for _, k := range ls.Names() {
		out = append(out, Matcher{Name: k, Value: ls[k], IsEqual: true})
	}
	return out
}

// PostSilence creates s and returns its ID.
func (c *Client) PostSilence(ctx context.Context, s Silence) (string, error) {
	var out struct {
		SilenceID string `json:"silenceID"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v2/silences", s, &out); err != nil {
		return "", err
	}
	if out.SilenceID == "" {
		return "", fmt.Errorf("alertmanager %s: no silenceID in the answer", c.URL)
	}
	return out.SilenceID, nil
}

// ExpireSilence expires the silence id.
func (c *Client) ExpireSilence(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v2/silence/"+url.PathEscape(id), nil, nil)
}

// PostAlerts posts alerts (firing without EndsAt, resolved with an EndsAt
// in the past).
func (c *Client) PostAlerts(ctx context.Context, as []Alert) error {
	return c.do(ctx, http.MethodPost, "/api/v2/alerts", as, nil)
}

// StatusError is an answer that is not 2xx.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string { return fmt.Sprintf("status %d: %s", e.Code, e.Body) }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.URL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("alertmanager %s: %w", c.URL, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("alertmanager %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("alertmanager %s %s: %w", method, path, &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(b))})
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("alertmanager %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Silencer silences alerts by their labels in the Alertmanager at a URL
// (the engine's AlertSilencer).
type Silencer struct {
	HTTP *http.Client
}

// Silence silences exactly the alerts of ls at amURL from starts until ends.
func (s Silencer) Silence(ctx context.Context, amURL string, ls assertd.Labels, comment string, starts, ends time.Time) (string, error) {
	c := &Client{URL: amURL, HTTP: s.HTTP}
	return c.PostSilence(ctx, Silence{Matchers: Exactly(ls), StartsAt: starts, EndsAt: ends, CreatedBy: "assertd", Comment: comment})
}

// Expire expires the silence id at amURL.
func (s Silencer) Expire(ctx context.Context, amURL, id string) error {
	return (&Client{URL: amURL, HTTP: s.HTTP}).ExpireSilence(ctx, id)
}

// Active reports whether the Alertmanager at amURL holds an active alert
// (silenced and inhibited ones included) with exactly the labels ls: a
// silenced alert's resolve reaches no receiver, so whoever silenced it
// asks here.
func (s Silencer) Active(ctx context.Context, amURL string, ls assertd.Labels) (bool, error) {
	q := url.Values{}
	for _, k := range ls.Names() {
		q.Add("filter", fmt.Sprintf("%s=%q", k, ls[k]))
	}
	var out []struct {
		Labels map[string]string `json:"labels"`
	}
	if err := (&Client{URL: amURL, HTTP: s.HTTP}).do(ctx, http.MethodGet, "/api/v2/alerts?"+q.Encode(), nil, &out); err != nil {
		return false, err
	}
	for _, a := range out {
		if len(a.Labels) == len(ls) {
			return true, nil
		}
	}
	return false, nil
}
