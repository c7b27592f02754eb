package web

import (
	"sync"

	"github.com/assertd/assertd/config"
)

// Access is who may use the API: the tokens (their names, roles and the
// hashes of their secrets) and public_read. A reload swaps in a new one
// without restarting the listener.
type Access struct {
	mu         sync.RWMutex
	tokens     []token
	publicRead bool
}

// LoadAccess reads the tokens' secrets from their variables (getenv) or files
// (relative to dir). Errors name the token and where its secret should be,
// never the secret.
func LoadAccess(w config.Web, dir string, getenv func(string) string) (*Access, error) {
	toks, err := loadTokens(w, dir, getenv)
	if err != nil {
		return nil, err
	}
	return &Access{tokens: toks, publicRead: w.PublicRead}, nil
}

// Swap puts the tokens and public_read of n in force. A UI session signed in
// with a token that is gone, or whose secret or role changed, ends.
func (a *Access) Swap(n *Access) {
	n.mu.RLock()
	toks, pub := n.tokens, n.publicRead
	n.mu.RUnlock()
	a.mu.Lock()
	a.tokens, a.publicRead = toks, pub
	a.mu.Unlock()
}

// snapshot returns the tokens in force and whether reads are public.
func (a *Access) snapshot() ([]token, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.tokens, a.publicRead
}

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
