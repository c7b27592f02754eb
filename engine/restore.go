package engine

import (
	"context"

	"github.com/assertd/assertd"
)

// instanceReader is a store that hands out its instances as it reads them
// (sqlstore.DB, which also gives instances of different asserts with the
// same label set one copy of it): a restart then adopts them one by one
// instead of holding every instance twice, as a slice and as the engine's.
type instanceReader interface {
	EachInstance(ctx context.Context, assert string, fn func(assertd.Instance) error) error
}

// eachInstance calls fn with every instance st holds.
func eachInstance(ctx context.Context, st Store, fn func(assertd.Instance)) error {
	if r, ok := st.(instanceReader); ok {
		return r.EachInstance(ctx, "", func(in assertd.Instance) error {
			fn(in)
			return nil
		})
	}
	stored, err := st.Instances(ctx, "")
	if err != nil {
		return err
	}
	for _, in := range stored {
		fn(in)
	}
	return nil
}

// restore adopts every stored instance; the engine is not running yet.
func (e *Engine) restore(ctx context.Context) error {
	return eachInstance(ctx, e.opts.Store, e.adopt)
}

// Restored is every instance a store held, read before the configuration
// that says which asserts exist is known, so that a restart reads the
// store and loads the configuration at once (Options.Restored).
type Restored struct {
	instances map[string]map[string]*tracked // assert → fingerprint → instance
	open      []*tracked                     // escalated
}

// ReadInstances reads every instance st holds, as New does without
// Options.Restored.
func ReadInstances(ctx context.Context, st Store) (*Restored, error) {
	r := &Restored{instances: map[string]map[string]*tracked{}}
	err := eachInstance(ctx, st, func(in assertd.Instance) {
		t := storedInstance(in)
		if t.inc != nil {
			r.open = append(r.open, t)
		}
		m := r.instances[in.Assert]
		if m == nil {
			m = map[string]*tracked{}
			r.instances[in.Assert] = m
		}
		m[in.Fingerprint] = t
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// adoptRestored adopts the instances of r whose assert is in the
// configuration, as restore does; the engine is not running yet.
func (e *Engine) adoptRestored(r *Restored) {
	for assert, m := range r.instances {
		if e.asserts[assert] == nil {
			continue // the assert is gone from the config; its history stays
		}
		e.instances[assert] = m
	}
	for _, t := range r.open {
		if e.asserts[t.Assert] != nil {
			e.open[t] = struct{}{}
		}
	}
}
