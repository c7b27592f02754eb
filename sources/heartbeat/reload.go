package heartbeat

import (
	"context"
	"fmt"
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
	if slices.ContainsFunc(hbs, func(c *asserts.CompiledHeartbeat) bool { return c.Create != nil }) {
		recs, err := t.store.LoadHeartbeats(ctx)
		if err != nil {
			return nil, fmt.Errorf("load heartbeats: %w", err)
		}
		d.addStored(recs)
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
	t.createMu.Lock()
	defer t.createMu.Unlock()
	cur := t.decl.Load()
	// Heartbeats created since Prepare stay, when their pattern does.
	nd := n.d.clone()
	for name, e := range cur.entries {
		if e.parent != "" && nd.entries[name] == nil {
			if p := nd.patternFor(name); p != nil && len(nd.created[p.name]) < p.max {
				nd.add(instance(p, name))
			}
		}
	}
	out := &declared{entries: make(map[string]*entry, len(nd.names)), names: nd.names, uuids: map[string]*entry{}, pingKey: nd.pingKey, created: nd.created}
	for _, name := range nd.names {
		e := nd.entries[name]
		if old := cur.entries[name]; old != nil {
			old.mu.Lock()
			old.spec, old.key, old.public, old.uuid = e.spec, e.key, e.public, e.uuid
			old.prefix, old.max, old.parent = e.prefix, e.max, e.parent
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
	both := out.clone()
	var removed []string
	for name, e := range cur.entries {
		if out.entries[name] == nil {
			both.entries[name] = e
			both.names = append(both.names, name)
			removed = append(removed, name)
		}
	}
	slices.Sort(both.names)
	t.decl.Store(both)
	t.warnPublic(out)
	return func() {
		t.createMu.Lock()
		defer t.createMu.Unlock()
		d := t.decl.Load().clone()
		for _, name := range removed {
			delete(d.entries, name)
		}
		d.names = slices.DeleteFunc(d.names, func(n string) bool { return slices.Contains(removed, n) })
		t.decl.Store(d)
	}
}
