package engine

import "github.com/assertd/assertd"

// Annotations renders the annotations of an instance's assert for it, as
// its pages carry them; nil when the assert has none or is not loaded.
func (e *Engine) Annotations(in assertd.Instance) map[string]string {
	e.mu.Lock()
	a := e.asserts[in.Assert]
	e.mu.Unlock()
	if a == nil {
		return nil
	}
	return annotations(a, in)
}
