package engine

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
)

// Identical queries are evaluated once per tick. Real rule sets ask the same
// question many times (several severities of one metric, each with its own
// threshold; a shared `up` guard): a tick counts, before it evaluates, how
// many of its due asserts send each query text to each source, and the
// queries sent more than once are run once, their result handed to every
// assert that sends them (a later one waits for the first). A result is
// dropped when its last assert has taken it, so a tick holds no more
// results than before. A query sent once goes straight to its source.

// slotKey is what an assert's slot in its interval is derived from (offset):
// the texts of its queries, so that asserts sending the same queries (the
// severities of one metric) are due in the same tick and share them; the
// name for an assert without queries.
func slotKey(a *asserts.Compiled) string {
	if len(a.Queries) == 0 {
		return a.Name
	}
	texts := make([]string, len(a.Queries))
	for i, q := range a.Queries {
		texts[i] = q.Text
	}
	slices.Sort(texts)
	return "queries\x00" + strings.Join(texts, "\x00")
}

type queryKey struct {
	source, text string
	at           int64 // Unix nanoseconds: the tick's evaluation time
}

type sharedResult struct {
	done  chan struct{} // closed when v and err are set
	v     assertd.Vector
	err   error
	users int // asserts still to take it
}

// queryCache is one tick's shared queries.
type queryCache struct {
	mu      sync.Mutex
	pending map[queryKey]*sharedResult
}

type queryCacheKey struct{}

// shareQueries returns ctx carrying a cache for the queries that the due
// asserts, evaluated at now, send more than once (ctx itself when none is),
// and the due asserts in groups, in order, to be evaluated one group per
// goroutine: the asserts of a group send the same queries, so the first
// runs them and the others find them answered instead of waiting for
// another goroutine.
func shareQueries(ctx context.Context, due []*asserts.Compiled, sourceOf func(*asserts.Compiled) string, now time.Time) (context.Context, [][]*asserts.Compiled) {
	groups := make([][]*asserts.Compiled, 0, len(due))
	if len(due) < 2 {
		for _, a := range due {
			groups = append(groups, []*asserts.Compiled{a})
		}
		return ctx, groups
	}
	counts := map[queryKey]int{}
	group := map[string]int{} // source and phase → index in groups
	for _, a := range due {
		src := sourceOf(a)
		if a.Trigger != nil {
			// An alert-triggered assert's queries are answered from its
			// alerts: never shared.
			groups = append(groups, []*asserts.Compiled{a})
			continue
		}
		for _, q := range a.Queries {
			counts[queryKey{src, q.Text, now.UnixNano()}]++
		}
		if len(a.Queries) == 0 {
			groups = append(groups, []*asserts.Compiled{a})
			continue
		}
		k := src + "\x00" + slotKey(a)
		if i, ok := group[k]; ok {
			groups[i] = append(groups[i], a)
			continue
		}
		group[k] = len(groups)
		groups = append(groups, []*asserts.Compiled{a})
	}
	c := &queryCache{pending: map[queryKey]*sharedResult{}}
	for k, n := range counts {
		if n > 1 {
			c.pending[k] = &sharedResult{users: n}
		}
	}
	if len(c.pending) == 0 {
		return ctx, groups
	}
	return context.WithValue(ctx, queryCacheKey{}, c), groups
}

// sharedQuerier returns q, or q behind the tick's cache when ctx has one.
func sharedQuerier(ctx context.Context, source string, q asserts.Querier) asserts.Querier {
	c, _ := ctx.Value(queryCacheKey{}).(*queryCache)
	if c == nil || q == nil {
		return q
	}
	return cachedQuerier{c: c, source: source, q: q}
}

type cachedQuerier struct {
	c      *queryCache
	source string
	q      asserts.Querier
}

// Query answers a shared query from the tick's cache, running it on the
// first call; any other query goes to the source. The vector is shared:
// evaluation reads it and never changes it.
func (cq cachedQuerier) Query(ctx context.Context, text string, ts time.Time) (assertd.Vector, error) {
	k := queryKey{cq.source, text, ts.UnixNano()}
	cq.c.mu.Lock()
	r := cq.c.pending[k]
	if r == nil {
		cq.c.mu.Unlock()
		return cq.q.Query(ctx, text, ts)
	}
	first := r.done == nil
	if first {
		r.done = make(chan struct{})
	}
	if r.users--; r.users <= 0 {
		delete(cq.c.pending, k) // the last user: nothing will ask again
	}
	cq.c.mu.Unlock()
	if first {
		r.v, r.err = cq.q.Query(ctx, text, ts)
		close(r.done)
		return r.v, r.err
	}
	select {
	case <-r.done:
		return r.v, r.err
	case <-ctx.Done():
		return assertd.Vector{}, ctx.Err()
	}
}
