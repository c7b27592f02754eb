// Package cluster is the membership of several assertd replicas sharing one
// PostgreSQL store: each replica holds a lease it renews, the asserts are
// sharded over the live replicas by rendezvous hashing, and each share is
// claimed in the store with a fencing epoch (store.Cluster) that every write
// of the share's owner carries (store.WithFence), so a replica that was
// paused past its lease commits nothing.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd/store"
)

// Defaults: a dead replica's shares are taken over within Lease + Renew.
const (
	DefaultLease = 10 * time.Second
	DefaultRenew = 2 * time.Second
)

// Clock is the time the member reads and waits on.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options configure a Member.
type Options struct {
	Store store.Cluster
	// Name names the replica (default: the host name); the replica's ID is
	// Name and a random suffix, new for every process and every lost lease.
	Name    string
	Address string // where the replica listens, as shown to operators
	Lease   time.Duration
	Renew   time.Duration
	// Shares returns the names of the shares in force (the asserts).
	Shares func() []string
	// Changed is called after a round that gained or lost shares.
	Changed    func()
	Clock      Clock
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Member is this replica's membership: its lease and the shares it owns.
type Member struct {
	o   Options
	log *slog.Logger
	met *metrics

	mu           sync.Mutex
	id           string
	started      time.Time
	leaseUntil   time.Time // of the last renewal that succeeded
	owned        map[string]store.Share
	replicas     []store.Replica
	shares       []store.Share
	lastTakeover Takeover
	lastErr      error
}

// Takeover is the latest share this replica took from another.
type Takeover struct {
	Share, From string
	Epoch       int64
	At          time.Time
}

// New returns a member that has not registered yet (Step or Run does).
func New(o Options) *Member {
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Renew <= 0 {
		o.Renew = DefaultRenew
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Name == "" {
		o.Name = "assertd"
	}
	if o.Shares == nil {
		o.Shares = func() []string { return nil }
	}
	m := &Member{o: o, log: o.Logger, owned: map[string]store.Share{}}
	m.id = newID(o.Name)
	m.met = newMetrics(o.Registerer, m)
	return m
}

func newID(name string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return name + "-" + hex.EncodeToString(b)
}

// ID is the replica's current ID.
func (m *Member) ID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id
}

// Run renews the lease and rebalances the shares every Renew until ctx
// ends. The lease then runs out unless Leave is called.
func (m *Member) Run(ctx context.Context) error {
	for {
		if err := m.Step(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("cluster membership", "replica", m.ID(), "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.o.Clock.After(m.o.Renew):
		}
	}
}

// Leave gives every share up and deletes the replica, so that the others
// take its shares at their next round instead of after its lease: a clean
// stop, once everything that writes under the shares' fences has ended.
func (m *Member) Leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.mu.Lock()
	id := m.id
	m.owned = map[string]store.Share{}
	m.leaseUntil = time.Time{}
	m.mu.Unlock()
	if err := m.o.Store.RemoveReplica(ctx, id); err != nil {
		m.log.Warn("leaving the cluster", "replica", id, "err", err)
	}
}

// Step is one round: renew the lease, read the live replicas, give up the
// shares that hash to another replica and claim those that hash here.
func (m *Member) Step(ctx context.Context) error {
	now := m.o.Clock.Now()
	m.mu.Lock()
	id, started := m.id, m.started
	if started.IsZero() {
		started = now
		m.started = now
	}
	m.mu.Unlock()
	err := m.o.Store.RenewReplica(ctx, store.Replica{ID: id, Address: m.o.Address, Started: started}, now, m.o.Lease)
	if errors.Is(err, store.ErrConflict) {
		// Paused past the lease: others may own the shares now.
		m.mu.Lock()
		lost := len(m.owned)
		m.owned = map[string]store.Share{}
		m.leaseUntil = time.Time{}
		m.id, m.started = newID(m.o.Name), now
		newID := m.id
		m.mu.Unlock()
		m.met.leaseLost.Inc()
		m.log.Error("the replica's lease expired: every share is dropped and the replica registers again", "replica", id, "shares", lost, "new_id", newID)
		m.changed(lost > 0)
		id = newID
		err = m.o.Store.RenewReplica(ctx, store.Replica{ID: id, Address: m.o.Address, Started: now}, now, m.o.Lease)
	}
	if err != nil {
		m.mu.Lock()
		m.lastErr = err
		expired := !m.leaseUntil.IsZero() && !now.Before(m.leaseUntil)
		lost := 0
		if expired {
			lost = len(m.owned)
			m.owned = map[string]store.Share{}
		}
		m.mu.Unlock()
		m.changed(lost > 0)
		return fmt.Errorf("renewing the lease: %w", err)
	}
	m.mu.Lock()
	m.leaseUntil = now.Add(m.o.Lease)
	m.lastErr = nil
	m.mu.Unlock()

	replicas, err := m.o.Store.Replicas(ctx, now.Add(-10*m.o.Lease))
	if err != nil {
		return fmt.Errorf("reading the replicas: %w", err)
	}
	var live []string
	for _, r := range replicas {
		if r.Live(now) {
			live = append(live, r.ID)
		}
	}
	if !slices.Contains(live, id) {
		live = append(live, id)
	}
	wanted := map[string]bool{}
	for _, s := range m.o.Shares() {
		if Owner(s, live) == id {
			wanted[s] = true
		}
	}
	changed := false
	// Give up first what hashes elsewhere, so the new owner can claim it.
	m.mu.Lock()
	var release []string
	for s := range m.owned {
		if !wanted[s] {
			release = append(release, s)
			delete(m.owned, s)
		}
	}
	m.mu.Unlock()
	slices.Sort(release)
	var errs []error
	for _, s := range release {
		changed = true
		if err := m.o.Store.ReleaseShare(ctx, s, id); err != nil {
			errs = append(errs, err)
		}
		m.log.Info("share released", "share", s, "replica", id)
	}
	names := make([]string, 0, len(wanted))
	for s := range wanted {
		names = append(names, s)
	}
	slices.Sort(names)
	for _, s := range names {
		m.mu.Lock()
		_, have := m.owned[s]
		m.mu.Unlock()
		if have {
			// Still ours: the renewal just made proves the lease never
			// expired, and only an expired lease lets another take a share.
			continue
		}
		sh, prev, ok, err := m.o.Store.ClaimShare(ctx, s, id, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue // a live replica still holds it: it gives it up on its next round
		}
		changed = true
		m.mu.Lock()
		m.owned[s] = sh
		if prev != "" && prev != id {
			m.lastTakeover = Takeover{Share: s, From: prev, Epoch: sh.Epoch, At: now}
		}
		m.mu.Unlock()
		if prev != "" && prev != id {
			m.met.takeovers.Inc()
		}
		m.log.Info("share claimed", "share", s, "replica", id, "epoch", sh.Epoch, "from", prev)
	}
	shares, err := m.o.Store.Shares(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	m.mu.Lock()
	m.replicas = replicas
	if err == nil {
		m.shares = shares
	}
	m.mu.Unlock()
	m.changed(changed)
	return errors.Join(errs...)
}

func (m *Member) changed(yes bool) {
	if yes && m.o.Changed != nil {
		m.o.Changed()
	}
}

// Fence returns this replica's fence on a share and whether it owns the
// share now (its lease valid and the share claimed). A fence of a share not
// owned has epoch 0, which the store never accepts.
func (m *Member) Fence(share string) (store.Fence, bool) {
	now := m.o.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	sh, ok := m.owned[share]
	if !ok || !now.Before(m.leaseUntil) {
		return store.Fence{Share: share, Replica: m.id}, false
	}
	return store.Fence{Share: share, Replica: m.id, Epoch: sh.Epoch}, true
}

// Fenced drops a share whose write the store refused: another replica owns it.
func (m *Member) Fenced(share string) {
	m.mu.Lock()
	_, had := m.owned[share]
	delete(m.owned, share)
	m.mu.Unlock()
	m.met.fenced.Inc()
	if had {
		m.log.Error("a write was fenced: the share moved to another replica and is dropped", "share", share, "replica", m.ID())
		m.changed(true)
	}
}

// Ready is nil while the replica holds a valid lease, else why not.
func (m *Member) Ready() error {
	now := m.o.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !now.Before(m.leaseUntil) {
		if m.lastErr != nil {
			return fmt.Errorf("cluster: replica %s holds no lease: %w", m.id, m.lastErr)
		}
		return fmt.Errorf("cluster: replica %s holds no lease", m.id)
	}
	return nil
}

// Status is what operators see of the cluster, from this replica.
type Status struct {
	Replica      string
	Lease        time.Duration
	Renew        time.Duration
	LeaseUntil   time.Time
	Replicas     []store.Replica
	Shares       []store.Share
	Owned        []string
	LastTakeover Takeover
}

// Status returns the cluster as this replica saw it on its last round.
func (m *Member) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Status{Replica: m.id, Lease: m.o.Lease, Renew: m.o.Renew, LeaseUntil: m.leaseUntil,
		Replicas: slices.Clone(m.replicas), Shares: slices.Clone(m.shares), LastTakeover: m.lastTakeover}
	for s := range m.owned {
		st.Owned = append(st.Owned, s)
	}
	slices.Sort(st.Owned)
	return st
}
