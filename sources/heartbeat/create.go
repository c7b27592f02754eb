package heartbeat

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
)

// stateRank orders states from best to worst for a pattern's aggregate.
var stateRank = map[State]int{StatePaused: 0, StateUp: 1, StateStarted: 2, StateLate: 3, StateNew: 4, StateRunningTooLong: 5, StateDown: 6}

// aggregate is the state, next change and status of pattern e: those of its
// worst created heartbeat.
func (d *declared) aggregate(e *entry, now time.Time) (State, time.Time, asserts.HeartbeatStatus) {
	worst, worstRank := State(""), -1
	var next time.Time
	var hs asserts.HeartbeatStatus
	for _, name := range d.created[e.name] {
		c := d.entries[name]
		if c == nil {
			continue
		}
		c.mu.RLock()
		st, n := evaluate(c.spec, &c.rec, c.runs, now)
		cs := status(name, st, &c.rec, now)
		c.mu.RUnlock()
		if r := stateRank[st]; r > worstRank {
			worst, worstRank, hs = st, r, cs
		}
		if !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	if worstRank < 0 {
		e.mu.RLock()
		defer e.mu.RUnlock()
		return StateNew, time.Time{}, status(e.name, StateNew, &e.rec, now)
	}
	return worst, next, hs
}

// patternFor returns the pattern declaration whose prefix name starts with
// (the longest), or nil.
func (d *declared) patternFor(name string) *entry {
	var best *entry
	for _, e := range d.entries {
		e.mu.RLock()
		p := e.prefix
		e.mu.RUnlock()
		if p != "" && len(name) > len(p) && strings.HasPrefix(name, p) && (best == nil || len(p) > len(best.prefix)) {
			best = e
		}
	}
	return best
}

// clone copies d for a change.
func (d *declared) clone() *declared {
	n := &declared{entries: maps.Clone(d.entries), names: slices.Clone(d.names), uuids: d.uuids, pingKey: d.pingKey, created: map[string][]string{}}
	for k, v := range d.created {
		n.created[k] = slices.Clone(v)
	}
	return n
}

// add declares the created heartbeat e (of pattern parent) in d.
func (d *declared) add(e *entry) {
	d.entries[e.name] = e
	if i, found := slices.BinarySearch(d.names, e.name); !found {
		d.names = slices.Insert(d.names, i, e.name)
	}
	list := d.created[e.parent]
	if i, found := slices.BinarySearch(list, e.name); !found {
		d.created[e.parent] = slices.Insert(list, i, e.name)
	}
}

// instance builds the entry of heartbeat name created from pattern p.
func instance(p *entry, name string) *entry {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return &entry{name: name, spec: p.spec, parent: p.name}
}

// create creates heartbeat name from the pattern it matches, storing its
// record first; it reports false when name existed already. Errors:
// ErrUnknown (no pattern matches), ErrLimit, or the store's.
func (t *Tracker) create(ctx context.Context, name string) (*entry, bool, error) {
	t.createMu.Lock()
	defer t.createMu.Unlock()
	d := t.decl.Load()
	if e := d.entries[name]; e != nil {
		return e, false, nil
	}
	p := d.patternFor(name)
	if p == nil {
		return nil, false, fmt.Errorf("%w %q", ErrUnknown, name)
	}
	p.mu.RLock()
	limit := p.max
	p.mu.RUnlock()
	if len(d.created[p.name]) >= limit {
		return nil, false, fmt.Errorf("%w: heartbeat %q has created its %d heartbeats (create: max): raise max or remove some", ErrLimit, p.name, limit)
	}
	e := instance(p, name)
	e.rec = assertd.HeartbeatRecord{Name: name, Created: t.now()}
	if err := t.store.SaveHeartbeat(ctx, e.rec); err != nil {
		return nil, false, fmt.Errorf("store heartbeat %q: %w", name, err)
	}
	n := d.clone()
	n.add(e)
	t.decl.Store(n)
	return e, true, nil
}

// addStored declares, in d, the stored heartbeats that were created from
// its patterns (up to each pattern's max, by name), so that they are
// followed again after a restart or a reload.
func (d *declared) addStored(recs []assertd.HeartbeatRecord) {
	names := make([]string, 0, len(recs))
	for _, r := range recs {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	for _, name := range names {
		if d.entries[name] != nil || assertd.CheckName("heartbeat", name) != nil {
			continue
		}
		p := d.patternFor(name)
		if p == nil || len(d.created[p.name]) >= p.max {
			continue
		}
		d.add(instance(p, name))
	}
}
