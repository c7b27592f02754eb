package engine

import "github.com/assertd/assertd/config"

// Config returns the configuration the engine runs: the last good one, so a
// failed reload does not change it. Callers must not modify it.
func (e *Engine) Config() *config.Set {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.set
}
