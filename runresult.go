package assertd

import "time"

// RunResult is how a remediation run ended, as the runner reports it to the
// engine (engine.RunResult is an alias of it, so that the runner in package
// remediations can implement engine.Remediator without importing engine).
type RunResult struct {
	RunID    string
	Shadow   bool
	Verified bool   // the verify step passed: the instance is ok again
	Outcome  string // in words
	StepLog  string // bounded; attached to the page
	At       time.Time
}
