package engine

import (
	"context"
	"maps"

	"github.com/assertd/assertd"
)

// instanceReader is a store that hands out its instances as it reads them
// (sqlstore.DB): a restart then adopts them one by one instead of holding
// every instance twice, as a slice and as the engine's.
type instanceReader interface {
	EachInstance(ctx context.Context, assert string, fn func(assertd.Instance) error) error
}

// restore adopts every stored instance; the engine is not running yet.
// Instances of different asserts with the same label set (asserts over the
// same targets) share one copy of it.
func (e *Engine) restore(ctx context.Context) error {
	sets := labelSets{}
	adopt := func(in assertd.Instance) error {
		e.adopt(sets.share(in))
		return nil
	}
	if r, ok := e.opts.Store.(instanceReader); ok {
		return r.EachInstance(ctx, "", adopt)
	}
	stored, err := e.opts.Store.Instances(ctx, "")
	if err != nil {
		return err
	}
	for _, in := range stored {
		_ = adopt(in)
	}
	return nil
}

// labelSets holds the first label set read under each fingerprint, up to
// maxLabelSets of them, so that the instances read later with an equal set
// take the same map (and fingerprint string). An instance's label set is
// never changed in place: a change replaces the map (keep).
type labelSets map[string]labelSet

type labelSet struct {
	fingerprint string
	labels      assertd.Labels
}

const maxLabelSets = 1 << 16

func (s labelSets) share(in assertd.Instance) assertd.Instance {
	if l, ok := s[in.Fingerprint]; ok {
		if maps.Equal(l.labels, in.Labels) {
			in.Fingerprint, in.Labels = l.fingerprint, l.labels
		}
		return in
	}
	if len(s) < maxLabelSets {
		s[in.Fingerprint] = labelSet{in.Fingerprint, in.Labels}
	}
	return in
}
