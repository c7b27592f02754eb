package engine

import (
	"encoding/binary"
	"hash/maphash"

	"github.com/assertd/assertd"
)

// Summary is the fleet at a glance, as Instances shows it, without a copy
// of any instance: how many instances are in each state, and a version
// that changes whenever an instance appears, goes, or changes its state,
// its silence, its since or whether a change of it waits for the store.
type Summary struct {
	Version uint64
	Counts  map[assertd.State]int
}

// versionSeed seeds the versions' hash: versions compare within one
// process only.
var versionSeed = maphash.MakeSeed()

// Summary summarizes every instance under the engine's lock in one pass
// (no copy, no sort, no allocation per instance): it is what a live page
// polls, and it costs the same however many pages watch.
func (e *Engine) Summary() Summary {
	s := Summary{Counts: map[assertd.State]int{}}
	var h maphash.Hash
	h.SetSeed(versionSeed)
	var b [9]byte
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.instances {
		for _, t := range m {
			state, since, held := t.State, t.Since, t.held > 0
			if held {
				state, since = t.saved.state, t.saved.since
			}
			if t.Silenced != "" {
				state = assertd.Silenced
			}
			s.Counts[state]++
			h.Reset()
			h.WriteString(t.Assert)
			h.WriteByte(0)
			h.WriteString(t.Fingerprint)
			h.WriteByte(0)
			h.WriteString(string(state))
			h.WriteByte(0)
			h.WriteString(t.Silenced)
			binary.LittleEndian.PutUint64(b[:8], uint64(since.UnixNano()))
			b[8] = 0
			if held {
				b[8] = 1
			}
			h.Write(b[:])
			// A sum does not depend on the order of the maps.
			s.Version += h.Sum64()
		}
	}
	return s
}
