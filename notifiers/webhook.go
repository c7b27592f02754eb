package notifiers

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/assertd/assertd"
)

// WebhookVersion is the version of the webhook payload.
const WebhookVersion = 1

// Headers of a webhook request.
const (
	HeaderSignature = "X-Assertd-Signature" // t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">
	HeaderDelivery  = "X-Assertd-Delivery"  // the message key: the same on every retry
)

// WebhookPayload is the JSON body a webhook receives.
type WebhookPayload struct {
	Version  int              `json:"version"`
	ID       string           `json:"id"` // the message key, stable across retries
	Channel  string           `json:"channel"`
	Kind     string           `json:"kind"` // trigger, resolve, info, ack
	DedupKey string           `json:"dedup_key"`
	Resolved bool             `json:"resolved,omitempty"`
	Level    int              `json:"level"`
	Round    int              `json:"round"`
	Title    string           `json:"title"`
	UI       string           `json:"ui,omitempty"`
	Notices  []assertd.Notice `json:"notices"`
}

// Webhook posts a versioned JSON payload, signed with HMAC-SHA256 over a
// timestamp and the body when a secret is set.
type Webhook struct {
	url    string
	secret []byte
	client *http.Client
}

// Notify posts m. 2xx is delivered; 408, 425, 429 and 5xx are retried
// (honouring Retry-After); any other status is a refusal.
func (w *Webhook) Notify(ctx context.Context, m *Message) (bool, error) {
	p := WebhookPayload{Version: WebhookVersion, ID: m.Key, Channel: m.Channel, Kind: string(m.Kind), DedupKey: m.DedupKey,
		Resolved: m.Resolved, Level: m.Level, Round: m.Round, Title: title(m), UI: uiLink(m.UI, m.Notices[0]), Notices: m.Notices}
	body, err := json.Marshal(p)
	if err != nil {
		return false, fmt.Errorf("webhook: encoding the payload: %w", err)
	}
	ctx, c := withCapture(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("webhook: the URL is not valid")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "assertd")
	req.Header.Set(HeaderDelivery, m.Key)
	if len(w.secret) > 0 {
		req.Header.Set(HeaderSignature, Sign(w.secret, m.At, body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // drained to reuse the connection; the status decides
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	err = fmt.Errorf("webhook: HTTP %d: %s", resp.StatusCode, c.excerpt())
	if !retryableStatus(resp.StatusCode) {
		return false, err
	}
	if ra := retryAfterHeader(c.retryAfter, time.Now()); ra > 0 {
		err = &RetryAfterError{After: ra, Err: err}
	}
	return true, err
}

// Sign returns the signature header of body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a signature header, as a receiver would: the HMAC must
// match and the timestamp be within tolerance of now (replays are refused).
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("signature header is not t=<seconds>,v1=<hex>")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature timestamp is %s away from now", d.Round(time.Second))
	}
	want := Sign(secret, time.Unix(sec, 0), body)
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return errors.New("signature does not match")
	}
	return nil
}
