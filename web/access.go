package web

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/assertd/assertd/config"
)

// Access is who may use the listener: the tokens (their names, roles, the
// hashes of their secrets and the series they may write), public_read,
// public_write, the bound of new series per writer and the browser origin
// trusted for changes (web.external_url). A reload swaps in a new one
// without restarting the listener.
type Access struct {
	mu sync.RWMutex
	p  policy
}

// policy is what an Access holds at one time.
type policy struct {
	tokens      []token
	matchers    map[string][][]*labels.Matcher // by token name; none: any series
	publicRead  bool
	publicWrite bool
	newSeries   config.NewSeriesLimit
	origins     *http.CrossOriginProtection
	secure      bool // external_url is https: cookies are Secure
}

// Defaults of web.new_series_limit.
const (
	DefaultNewSeriesPerSecond = 100
	DefaultNewSeriesBurst     = 10000
)

// LoadAccess reads the tokens' secrets from their variables (getenv) or files
// (relative to dir). Errors name the token and where its secret should be,
// never the secret.
func LoadAccess(w config.Web, dir string, getenv func(string) string) (*Access, error) {
	toks, err := loadTokens(w, dir, getenv)
	if err != nil {
		return nil, err
	}
	p := policy{tokens: toks, matchers: map[string][][]*labels.Matcher{}, publicRead: w.PublicRead, publicWrite: w.PublicWrite,
		newSeries: w.NewSeries, origins: http.NewCrossOriginProtection()}
	for _, t := range w.Tokens {
		for _, m := range t.WriteMatchers {
			ms, err := config.ParseWriteMatchers(m)
			if err != nil {
				return nil, fmt.Errorf("web token %s: %w", t.Name, err)
			}
			p.matchers[t.Name] = append(p.matchers[t.Name], ms)
		}
	}
	if p.newSeries.PerSecond == 0 {
		p.newSeries.PerSecond = DefaultNewSeriesPerSecond
	}
	if p.newSeries.Burst == 0 {
		p.newSeries.Burst = DefaultNewSeriesBurst
	}
	if w.ExternalURL != "" {
		u, err := url.Parse(w.ExternalURL)
		if err != nil {
			return nil, fmt.Errorf("web.external_url: %w", err)
		}
		if err := p.origins.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, fmt.Errorf("web.external_url: %w", err)
		}
		p.secure = u.Scheme == "https"
	}
	return &Access{p: p}, nil
}

// Swap puts the policy of n in force. A UI session signed in with a token
// that is gone, or whose secret or role changed, ends.
func (a *Access) Swap(n *Access) {
	p := n.policy()
	a.mu.Lock()
	a.p = p
	a.mu.Unlock()
}

func (a *Access) policy() policy {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.p
}

// snapshot returns the tokens in force and whether reads are public.
func (a *Access) snapshot() ([]token, bool) {
	p := a.policy()
	return p.tokens, p.publicRead
}

// HasTokens reports whether any token is configured.
func (a *Access) HasTokens() bool { return len(a.policy().tokens) > 0 }

// holds reports whether t is still a token in force, with the same secret
// and role.
func (a *Access) holds(t token) bool {
	toks, _ := a.snapshot()
	for _, x := range toks {
		if x == t {
			return true
		}
	}
	return false
}

// SecretsChanged names the tokens of n that are tokens now too, but with
// another secret.
func (a *Access) SecretsChanged(n *Access) []string {
	cur, _ := a.snapshot()
	next, _ := n.snapshot()
	var out []string
	for _, t := range next {
		for _, c := range cur {
			if c.name == t.name && c.hash != t.hash {
				out = append(out, t.name)
			}
		}
	}
	return out
}
