package heartbeat

import (
	"context"
	"maps"
	"slices"

	"github.com/assertd/assertd/asserts"
)

// Next is a set of heartbeats built by Prepare, to be put in force by Swap.
type Next struct {
	d     *declared
	fresh []*entry // first declared now: their new records are stored at Swap
}

// Prepare checks a new set of heartbeats and resolves their keys, changing
// nothing: a key that cannot be read, or a store that cannot give the state
// of a heartbeat declared now, is an error.
func (t *Tracker) Prepare(ctx context.Context, hbs []*asserts.CompiledHeartbeat, pings asserts.Pings) (*Next, error) {
	d, err := t.declare(hbs, pings)
	if err != nil {
		return nil, err
	}
	cur := t.decl.Load()
	var added []*entry
	for _, name := range d.names {
		if cur.entries[name] == nil {
			added = append(added, d.entries[name])
		}
	}
	fresh, err := t.load(ctx, added)
	if err != nil {
		return nil, err
	}
	return &Next{d: d, fresh: fresh}, nil
}

// Swap puts a prepared set in force: a heartbeat declared now answers its
// pings, and one declared before keeps its pings and state under its new
// period, schedule, grace and key. A new heartbeat's record is stored before
// its first ping can arrive; a store failure there is logged (its first ping
// stores it again). The heartbeats no longer declared stay known until
// retire is called: the caller calls it once nothing refers to them any
// more (the engine has the asserts of the new configuration); from then on
// their pings are answered 404.
func (t *Tracker) Swap(ctx context.Context, n *Next) (retire func()) {
	cur := t.decl.Load()
	out := &declared{entries: make(map[string]*entry, len(n.d.names)), names: n.d.names, uuids: map[string]*entry{}, pingKey: n.d.pingKey}
	for _, name := range n.d.names {
		e := n.d.entries[name]
		if old := cur.entries[name]; old != nil {
			old.mu.Lock()
			old.spec, old.key, old.public, old.uuid = e.spec, e.key, e.public, e.uuid
			old.mu.Unlock()
			e = old
		}
		out.entries[name] = e
		if e.uuid != "" {
			out.uuids[e.uuid] = e
		}
	}
	for _, e := range n.fresh {
		if err := t.store.SaveHeartbeat(ctx, e.rec); err != nil {
			t.log.Error("new heartbeat not stored yet", "heartbeat", e.name, "err", err)
		}
	}
	// Until retire: the new set plus the ones removed.
	both := &declared{entries: maps.Clone(out.entries), names: slices.Clone(out.names), uuids: out.uuids, pingKey: out.pingKey}
	for name, e := range cur.entries {
		if out.entries[name] == nil {
			both.entries[name] = e
			both.names = append(both.names, name)
		}
	}
	slices.Sort(both.names)
	t.decl.Store(both)
	return func() { t.decl.CompareAndSwap(both, out) }
}
