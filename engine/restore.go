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

// restore adopts every stored instance; the engine is not running yet.
func (e *Engine) restore(ctx context.Context) error {
	if r, ok := e.opts.Store.(instanceReader); ok {
		return r.EachInstance(ctx, "", func(in assertd.Instance) error {
			e.adopt(in)
			return nil
		})
	}
	stored, err := e.opts.Store.Instances(ctx, "")
	if err != nil {
		return err
	}
	for _, in := range stored {
		e.adopt(in)
	}
	return nil
}
