package engine

import "maps"

// keep returns old when it holds what cur holds, else cur. An instance's
// labels and values are the same cycle after cycle; keeping the map it has
// (which the instance as stored shares) instead of each evaluation's new
// one keeps one copy per instance instead of two, and lets the new one go.
func keep[M ~map[K]V, K, V comparable](old, cur M) M {
	if old != nil && maps.Equal(old, cur) {
		return old
	}
	return cur
}
