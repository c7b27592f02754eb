package store

import (
	"context"
	"errors"
	"time"

	"github.com/assertd/assertd"
)

// ErrFenced says the write was refused because the share it belongs to has
// moved to another replica (its fencing epoch is no longer the caller's).
// Nothing of it was written; the caller must drop the share.
var ErrFenced = errors.New("fenced: the share moved to another replica")

// Fence is a replica's claim on a share: every write made with a context
// carrying it (WithFence) is committed only if the share is still owned by
// Replica at Epoch, checked in the write's own transaction.
type Fence struct {
	Share   string
	Replica string
	Epoch   int64
}

type fenceKey struct{}

// WithFence returns a context whose writes are fenced by f.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceOf returns the fence a context carries.
func FenceOf(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok
}

// Replica is one assertd process registered in a shared store.
type Replica struct {
	ID         string
	Address    string
	Started    time.Time
	Renewed    time.Time
	LeaseUntil time.Time
}

// Live reports whether the replica's lease is still valid at now.
func (r Replica) Live(now time.Time) bool { return now.Before(r.LeaseUntil) }

// Share is a unit of evaluation (one assert) and who owns it.
type Share struct {
	Name  string
	Owner string // "" when released
	Epoch int64  // bumped on every change of owner
	Since time.Time
}

// Cluster is the coordination of several replicas sharing one store: their
// leases and the ownership of shares, with fencing epochs.
type Cluster interface {
	// RenewReplica registers the replica or renews its lease until
	// now+lease. It returns ErrConflict when the replica's lease had
	// already expired (another replica may have taken its shares): the
	// caller must drop every share before it registers again under a new ID.
	RenewReplica(ctx context.Context, r Replica, now time.Time, lease time.Duration) error
	// RemoveReplica deletes the replica and releases its shares (a clean stop).
	RemoveReplica(ctx context.Context, id string) error
	// Replicas returns every registered replica, by ID; those whose lease
	// expired before forgetBefore are deleted first.
	Replicas(ctx context.Context, forgetBefore time.Time) ([]Replica, error)
	// ClaimShare makes replica the owner of the share when it is unowned,
	// released, owned by a replica whose lease expired at now, or already
	// replica's. A new owner gets a new epoch; prev is the owner before
	// ("" when none). ok is false when a live replica holds it.
	ClaimShare(ctx context.Context, share, replica string, now time.Time) (s Share, prev string, ok bool, err error)
	// ReleaseShare gives a share up (its epoch stays, so the next owner's
	// is higher) if replica owns it.
	ReleaseShare(ctx context.Context, share, replica string) error
	// Shares returns every share, by name.
	Shares(ctx context.Context) ([]Share, error)
	// InterruptAssertRuns is InterruptRuns for the runs of one assert.
	InterruptAssertRuns(ctx context.Context, assert string, at time.Time, reason string) ([]assertd.Run, error)
}
