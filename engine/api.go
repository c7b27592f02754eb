package engine

import (
	"time"

	"github.com/assertd/assertd"
)

// BreakGlassRequest asks for a remediation run started by hand, outside the
// automatic path ("break glass"): recorded in the audit trail with its
// mandatory reason.
type BreakGlassRequest struct {
	Remediation string
	Assert      string         // the assert whose instance it is for
	Labels      assertd.Labels // the instance's labels
	Reason      string         // mandatory
	DryRun      bool           // record what would run; make no external call
	By          string         // the operator (API token name)
	At          time.Time
}
