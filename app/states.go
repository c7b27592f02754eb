package app

import (
	"context"
	"time"
)

// statesEvery is how often the instances' states are written into the
// embedded TSDB as ASSERTS series.
const statesEvery = 5 * time.Second

// RecordStates writes every instance's state into the embedded TSDB as an
// ASSERTS{assert, state, …labels} series, at the clock's time.
func (a *App) RecordStates(ctx context.Context) error {
	return a.states.Record(ctx, a.eng.Instances(), a.now())
}

// recordStates writes the states every statesEvery until ctx ends.
func (a *App) recordStates(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.o.Clock.After(statesEvery):
		}
		if err := a.RecordStates(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("writing the ASSERTS series", "err", err)
		}
	}
}
