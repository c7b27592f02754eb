//go:build !unix

package app

// lockFile is not available here: SQLite's own locking is all there is.
func lockFile(string) (func() error, error) { return func() error { return nil }, nil }
