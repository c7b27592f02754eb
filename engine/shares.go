package engine

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/store"
)

// Shares says which asserts this replica evaluates when several replicas
// share the store (cluster.Member): each assert is a share, owned by one
// replica under a fencing epoch that every write about it carries.
type Shares interface {
	// Fence returns this replica's fence on the assert's share and whether
	// it owns the share now.
	Fence(assert string) (store.Fence, bool)
	// Fenced tells that the store refused a write of the share: another
	// replica owns it.
	Fenced(assert string)
}

// shareStore is what taking a share over needs of the store.
type shareStore interface {
	InterruptAssertRuns(ctx context.Context, assert string, at time.Time, reason string) ([]assertd.Run, error)
}

// adopt tracks an instance as the store holds it; e.mu is held or the
// engine is not running yet.
func (e *Engine) adopt(in assertd.Instance) {
	if e.asserts[in.Assert] == nil {
		return // the assert is gone from the config; its history stays
	}
	t := storedInstance(in)
	if t.inc != nil {
		e.open[t] = struct{}{}
	}
	e.instancesOf(in.Assert)[in.Fingerprint] = t
}

// storedInstance is the engine's instance for one read from the store.
func storedInstance(in assertd.Instance) *tracked {
	t := &tracked{Instance: in, stored: true, saved: savedOf(in), blindEsc: blindStored(in),
		savedViolated: in.ViolatedSince, savedClear: in.ClearSince}
	if in.State == assertd.Escalated {
		// Its pages and acknowledgement are read when they are needed.
		t.inc = &incident{start: in.Since, paged: map[string]bool{}, sent: map[int]bool{}}
	}
	return t
}

// ownsLocked reports whether this replica evaluates the assert; e.mu is held.
func (e *Engine) ownsLocked(assert string) bool {
	if e.opts.Shares == nil {
		return true
	}
	_, ok := e.epochs[assert]
	return ok
}

// fence returns ctx with the fence of the assert's share, so that the
// store commits its writes only while this replica owns the share.
func (e *Engine) fence(ctx context.Context, assert string) context.Context {
	if e.opts.Shares == nil || assert == "" {
		return ctx
	}
	if _, ok := store.FenceOf(ctx); ok {
		return ctx
	}
	f, _ := e.opts.Shares.Fence(assert)
	return store.WithFence(ctx, f)
}

// wasFenced reports whether err is the store refusing a write of a share
// that moved; the share is then dropped.
func (e *Engine) wasFenced(assert string, err error) bool {
	if e.opts.Shares == nil || !errors.Is(err, store.ErrFenced) {
		return false
	}
	e.opts.Shares.Fenced(assert)
	return true
}

// changeAssert is the assert a change is about ("" when none).
func changeAssert(c store.Change) string {
	switch {
	case c.Instance != nil:
		return c.Instance.Assert
	case c.Transition != nil:
		return c.Transition.Assert
	case c.Decision != nil:
		return c.Decision.Assert
	}
	return ""
}

// syncShares forgets the instances of the asserts whose share this replica
// lost and loads, from the store, those of the shares it gained — their
// for and clear_for clocks continue where the previous owner left them —
// interrupting the runs the previous owner left (they escalate once).
func (e *Engine) syncShares(ctx context.Context, now time.Time) {
	if e.opts.Shares == nil {
		return
	}
	type gain struct {
		name  string
		fence store.Fence
	}
	var gained []gain
	e.mu.Lock()
	names := make([]string, 0, len(e.asserts))
	for name := range e.asserts {
		names = append(names, name)
	}
	for name := range e.epochs {
		if e.asserts[name] == nil {
			delete(e.epochs, name)
		}
	}
	e.mu.Unlock()
	slices.Sort(names)
	for _, name := range names {
		f, ok := e.opts.Shares.Fence(name)
		e.mu.Lock()
		have, owned := e.epochs[name]
		switch {
		case !ok && owned:
			delete(e.epochs, name)
			delete(e.instances, name)
			delete(e.next, name)
			delete(e.floods, name)
			e.log.Info("share lost: the assert is evaluated by another replica", "assert", name, "epoch", have)
		case ok && (!owned || have != f.Epoch):
			delete(e.instances, name)
			gained = append(gained, gain{name, f})
		}
		e.mu.Unlock()
	}
	if len(gained) == 0 {
		return
	}
	ss, _ := e.opts.Store.(shareStore)
	for _, g := range gained {
		fctx := store.WithFence(ctx, g.fence)
		stored, err := e.opts.Store.Instances(ctx, g.name)
		if err != nil {
			e.log.Warn("loading the instances of a share", "assert", g.name, "err", err)
			continue // claimed again on the next tick
		}
		var runs []assertd.Run
		if ss != nil {
			runs, err = ss.InterruptAssertRuns(fctx, g.name, now, "the replica running it stopped or lost its share")
			if err != nil {
				if !e.wasFenced(g.name, err) {
					e.log.Warn("interrupting the runs of a share taken over", "assert", g.name, "err", err)
				}
				continue
			}
		}
		e.mu.Lock()
		for _, in := range stored {
			e.adopt(in)
		}
		e.epochs[g.name] = g.fence.Epoch
		e.mu.Unlock()
		e.log.Info("share taken", "assert", g.name, "epoch", g.fence.Epoch, "instances", len(stored), "interrupted_runs", len(runs))
		for _, r := range runs {
			e.interrupted(fctx, r, now)
		}
	}
	e.resumeOwed(ctx)
}

// SharesChanged wakes Run to take or drop the shares that moved.
func (e *Engine) SharesChanged() { e.poke() }
