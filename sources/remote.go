package sources

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
)

// DefaultRemoteTimeout bounds a query to a remote source.
const DefaultRemoteTimeout = 30 * time.Second

// Remote queries a Prometheus-compatible HTTP API (/api/v1/query).
type Remote struct {
	Name    string
	api     v1.API
	timeout time.Duration
}

// NewRemote builds the client for c. Relative file paths are taken from
// baseDir (the config's directory); secrets given by environment variable
// are read with getenv. A missing secret is an error that names the source
// and the setting, never the secret.
func NewRemote(c config.Prometheus, baseDir string, getenv func(string) string) (*Remote, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(baseDir, p)
	}
	secret := func(setting, env string) (commoncfg.Secret, error) {
		v := getenv(env)
		if v == "" {
			return "", fmt.Errorf("source %s: %s names $%s, which is empty or unset", c.Name, setting, env)
		}
		return commoncfg.Secret(v), nil
	}
	hc := commoncfg.HTTPClientConfig{
		TLSConfig: commoncfg.TLSConfig{
			CAFile: abs(c.TLS.CAFile), CertFile: abs(c.TLS.CertFile), KeyFile: abs(c.TLS.KeyFile),
			ServerName: c.TLS.ServerName, InsecureSkipVerify: c.TLS.InsecureSkipVerify,
		},
		FollowRedirects: true,
		EnableHTTP2:     true,
	}
	switch {
	case c.BearerTokenEnv != "":
		s, err := secret("bearer_token_env", c.BearerTokenEnv)
		if err != nil {
			return nil, err
		}
		hc.Authorization = &commoncfg.Authorization{Type: "Bearer", Credentials: s}
	case c.BearerTokenFile != "":
		hc.Authorization = &commoncfg.Authorization{Type: "Bearer", CredentialsFile: abs(c.BearerTokenFile)}
	}
	if b := c.BasicAuth; b != nil {
		hc.BasicAuth = &commoncfg.BasicAuth{Username: b.Username, PasswordFile: abs(b.PasswordFile)}
		if b.PasswordEnv != "" {
			s, err := secret("basic_auth.password_env", b.PasswordEnv)
			if err != nil {
				return nil, err
			}
			hc.BasicAuth.Password = s
		}
	}
	if len(c.Headers) > 0 {
		h := map[string]commoncfg.Header{}
		for k, v := range c.Headers {
			h[k] = commoncfg.Header{Values: []string{v}}
		}
		hc.HTTPHeaders = &commoncfg.Headers{Headers: h}
	}
	if err := hc.Validate(); err != nil {
		return nil, fmt.Errorf("source %s: %w", c.Name, err)
	}
	rt, err := commoncfg.NewRoundTripperFromConfig(hc, "assertd")
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", c.Name, err)
	}
	if _, err := url.Parse(c.URL); err != nil {
		return nil, fmt.Errorf("source %s: url: %w", c.Name, err)
	}
	client, err := api.NewClient(api.Config{Address: c.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", c.Name, err)
	}
	timeout := c.Timeout.Std()
	if timeout <= 0 {
		timeout = DefaultRemoteTimeout
	}
	return &Remote{Name: c.Name, api: v1.NewAPI(client), timeout: timeout}, nil
}

// Query runs an instant query at ts.
func (r *Remote) Query(ctx context.Context, q string, ts time.Time) (assertd.Vector, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	val, _, _, err := r.api.Query(ctx, q, ts, v1.WithTimeout(r.timeout))
	if err != nil {
		return assertd.Vector{}, r.classify(err)
	}
	switch v := val.(type) {
	case model.Vector:
		out := assertd.Vector{Samples: make([]assertd.Sample, 0, len(v))}
		for _, s := range v {
			if s.Histogram != nil {
				continue // native histograms have no single value
			}
			ls := make(assertd.Labels, len(s.Metric))
			for k, val := range s.Metric {
				ls[string(k)] = string(val)
			}
			out.Samples = append(out.Samples, assertd.Sample{Labels: ls, Value: float64(s.Value)})
		}
		return out, nil
	case *model.Scalar:
		return assertd.Vector{Scalar: true, Samples: []assertd.Sample{{Labels: assertd.Labels{}, Value: float64(v.Value)}}}, nil
	default:
		return assertd.Vector{}, fmt.Errorf("%w: source %s: the query returns a %s; it must return an instant vector or a scalar", assertd.ErrBadQuery, r.Name, val.Type())
	}
}

func (r *Remote) classify(err error) error {
	var apiErr *v1.Error
	if errors.As(err, &apiErr) && (apiErr.Type == v1.ErrBadData || apiErr.Type == v1.ErrExec) {
		return fmt.Errorf("%w: source %s: %s", assertd.ErrBadQuery, r.Name, apiErr.Msg)
	}
	return fmt.Errorf("%w: source %s: %v", assertd.ErrSourceUnavailable, r.Name, err)
}
