package app

import (
	"context"
	"fmt"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/web"
)

// webEngine gives the web layer the engine. The operator actions
// (BreakGlass, Approve, Acknowledge) are engine methods that land with the
// remediation runner and the notifiers: once the engine has them it
// satisfies web.Engine itself and is used as it is; until then the API
// answers 501 for those three.
func webEngine(e *engine.Engine) web.Engine {
	if we, ok := any(e).(web.Engine); ok {
		return we
	}
	return withoutOperator{e}
}

type withoutOperator struct{ *engine.Engine }

func (withoutOperator) BreakGlass(context.Context, engine.BreakGlassRequest) (assertd.Run, error) {
	return assertd.Run{}, fmt.Errorf("break glass: %w (no remediation runner)", web.ErrNotAvailable)
}

func (withoutOperator) Approve(context.Context, string, string, bool, string, time.Time) error {
	return fmt.Errorf("approve: %w (no remediation runner)", web.ErrNotAvailable)
}

func (withoutOperator) Acknowledge(context.Context, string, string, string, string, time.Time) error {
	return fmt.Errorf("acknowledge: %w (no notifiers)", web.ErrNotAvailable)
}
