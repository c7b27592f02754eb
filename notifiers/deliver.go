package notifiers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
)

// DefaultGroupWait is how long pages gather before the first one goes out
// when a policy sets no group_wait.
const DefaultGroupWait = 5 * time.Second

// Deliverer claims due messages from the outbox and sends them. It is
// safe to run one per replica: claims never overlap.
type Deliverer struct {
	wake     chan struct{} // Wake: a message was committed; deliver now
	o        Options
	st       Store
	log      *slog.Logger
	ui       string
	policies map[string]config.EscalationPolicy // by name: how pages group (group_by, group_wait)
	order    []string                           // channel names, in config order
	chans    map[string]*channel
	cfgs     map[string]config.Notifier // the settings each channel was built from
	secrets  map[string][]string        // the secret values each channel was built with
	redact   redactor
	m        *metrics

	round sync.Mutex // held by a round of DeliverDue; Swap waits for it

	mu      sync.Mutex // channel health, statsAt, none, windows; the channels, policies and redactor (replaced by Swap)
	statsAt time.Time
	none    bool
	windows map[string]time.Time // channel/group → when its group_wait window opened
	soonest time.Time            // the earliest time a released message is due again
}

// channel is one configured notifier and how it fares.
type channel struct {
	name, kind string
	n          Notifier
	limiter    *rate.Limiter // nil: unlimited

	// Under Deliverer.mu.
	failures int       // failed sends in a row
	since    time.Time // first failure of the streak
	until    time.Time // no attempt before (backoff, Retry-After)
	lastErr  string
	noticed  bool // the others were told it fails
}

// ChannelHealth is how one channel fares (for the UI and the API).
type ChannelHealth struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	Failing   bool      `json:"failing"`
	Since     time.Time `json:"since,omitzero"`
	Failures  int       `json:"failures"`
	LastError string    `json:"last_error,omitempty"`
	RetryAt   time.Time `json:"retry_at,omitzero"`
}

// New builds the channels of cfg and a Deliverer over o.Store. Secrets are
// read here, by variable (getenv) or file (relative to dir): a missing or
// unreadable one is an error naming the channel and the setting, never the
// secret.
func New(cfg *config.Config, dir string, getenv func(string) string, o Options) (*Deliverer, error) {
	if cfg == nil || o.Store == nil {
		return nil, errors.New("notifiers: a configuration and a store are required")
	}
	o.defaults()
	d := &Deliverer{wake: make(chan struct{}, 1), o: o, st: o.Store, log: o.Logger, chans: map[string]*channel{}, windows: map[string]time.Time{}}
	n, err := d.Prepare(cfg, dir, getenv)
	if err != nil {
		return nil, err
	}
	d.m = newMetrics(o.Registerer, n.order)
	d.Swap(n)
	return d, nil
}

// Run delivers every Poll until ctx ends.
func (d *Deliverer) Run(ctx context.Context) error {
	var last string
	var lastAt time.Time
	for {
		if err := d.DeliverDue(ctx, d.o.Now()); err != nil && ctx.Err() == nil {
			if msg := d.redactor().String(err.Error()); msg != last || time.Since(lastAt) > time.Minute {
				d.log.Warn("delivering notifications", "err", msg)
				last, lastAt = msg, time.Now()
			}
		}
		// Sleep until the next poll, or sooner when a message held back
		// (group_wait, a rate limit) falls due, or when woken.
		wait := d.o.Poll
		d.mu.Lock()
		if !d.soonest.IsZero() {
			wait = min(wait, max(d.soonest.Sub(d.o.Now()), time.Millisecond))
			d.soonest = time.Time{}
		}
		d.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-d.wake:
			t.Stop()
		}
	}
}

// Wake makes Run deliver now instead of at its next poll: the engine calls
// it when it commits a message, so a page does not wait for the poll.
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// DeliverDue does one round at now: it reports failing channels, then
// claims the due messages and sends them, channels in parallel, each
// channel's messages in order.
func (d *Deliverer) DeliverDue(ctx context.Context, now time.Time) error {
	d.round.Lock()
	defer d.round.Unlock()
	var errs []error
	if err := d.reportFailing(ctx, now); err != nil {
		errs = append(errs, fmt.Errorf("failing-channel notice: %w", err))
	}
	msgs, err := d.st.Claim(ctx, d.o.Owner, now, d.o.Lease, d.o.Batch)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("claiming messages: %w", err))...)
	}
	by := map[string][]assertd.Message{}
	for _, m := range msgs {
		by[m.Channel] = append(by[m.Channel], m)
	}
	var wg sync.WaitGroup
	var emu sync.Mutex
	for name, ms := range by {
		wg.Go(func() {
			if err := d.deliverChannel(ctx, name, ms, now); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := d.stats(ctx, now); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// unit is what one Notify sends: one message, or a group of pages.
type unit struct {
	msgs    []assertd.Message
	notices []assertd.Notice
	key     string // dedup key: the message's, or the group's
	thread  string
	level   int
	round   int
}

func (d *Deliverer) deliverChannel(ctx context.Context, name string, ms []assertd.Message, now time.Time) error {
	slices.SortFunc(ms, func(a, b assertd.Message) int { return int(a.ID - b.ID) })
	ch := d.chans[name]
	var errs []error
	if ch == nil {
		for _, m := range ms {
			errs = append(errs, d.dead(ctx, name, []assertd.Message{m}, now, fmt.Sprintf("no notifier named %q in the configuration", name)))
		}
		return errors.Join(errs...)
	}
	var units []*unit
	groups := map[string]*unit{}
	for _, m := range ms {
		var n assertd.Notice
		if err := json.Unmarshal([]byte(m.Payload), &n); err != nil || n.Kind == "" {
			errs = append(errs, d.dead(ctx, name, []assertd.Message{m}, now, "the payload is not a notice"))
			continue
		}
		u := &unit{msgs: []assertd.Message{m}, notices: []assertd.Notice{n}, key: m.DedupKey, level: n.Level, round: n.Round}
		p, paged := d.policies[n.Policy]
		if m.Kind != string(assertd.NoticeTrigger) || !paged {
			units = append(units, u)
			continue
		}
		wait := p.GroupWait.Std()
		if wait <= 0 {
			wait = DefaultGroupWait
		}
		gk := fmt.Sprintf("%s/r%d/l%d", groupKey(p.Name, p.GroupBy, n), n.Round, n.Level)
		if due := d.window(name+"/"+gk, m.Created, wait, now); now.Before(due) {
			errs = append(errs, d.release(ctx, []assertd.Message{m}, due, ""))
			continue
		}
		hist, err := d.history(ctx, m.Channel, m.DedupKey)
		if err != nil {
			errs = append(errs, d.release(ctx, []assertd.Message{m}, now.Add(d.o.Poll), ""), err)
			continue
		}
		u.thread, _ = threadOf(hist, m)
		if u.thread != "" {
			gk = "thread/" + u.thread + gk
		}
		if g := groups[gk]; g != nil {
			g.msgs, g.notices = append(g.msgs, m), append(g.notices, n)
			if g.thread == "" {
				g.key = groupKey(p.Name, p.GroupBy, n)
			}
			continue
		}
		groups[gk] = u
		units = append(units, u)
	}
	for _, u := range units {
		if err := d.send(ctx, ch, u, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// window returns when the group_wait window of a page created at created
// closes: the first page of a group opens a window, and the pages that come
// while it is open wait for its end, to go out together.
func (d *Deliverer) window(key string, created time.Time, wait time.Duration, now time.Time) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.windows) > 10000 {
		for k, w := range d.windows {
			if now.Sub(w) > time.Hour {
				delete(d.windows, k)
			}
		}
	}
	w, ok := d.windows[key]
	if !ok || !created.Before(w.Add(wait)) || created.Before(w) {
		w = created
		d.windows[key] = w
	}
	return w.Add(wait)
}

// send sends one unit, unless its channel is cooling down or over its rate.
func (d *Deliverer) send(ctx context.Context, ch *channel, u *unit, now time.Time) error {
	d.mu.Lock()
	until, lastErr := ch.until, ch.lastErr
	d.mu.Unlock()
	if now.Before(until) {
		return d.release(ctx, u.msgs, until, "waiting: "+ch.name+" is failing: "+lastErr)
	}
	if ch.limiter != nil {
		r := ch.limiter.ReserveN(now, 1)
		if delay := r.DelayFrom(now); !r.OK() || delay > 0 {
			r.CancelAt(now)
			return d.release(ctx, u.msgs, now.Add(max(delay, 10*time.Millisecond)), "")
		}
	}
	m := &Message{Key: u.msgs[0].Key, Channel: ch.name, Kind: assertd.NoticeKind(u.msgs[0].Kind), DedupKey: u.key,
		Notices: u.notices, Thread: u.thread, Level: u.level, Round: u.round, At: now, UI: d.ui}
	if m.Kind == assertd.NoticeAck {
		hold, err := d.prepareAck(ctx, u.msgs[0], m)
		switch {
		case err != nil:
			return errors.Join(err, d.release(ctx, u.msgs, now.Add(d.o.Poll), ""))
		case hold:
			return d.release(ctx, u.msgs, now.Add(d.o.Poll), "waiting: the page on this channel is not delivered yet")
		}
	}
	if m.Kind == assertd.NoticeResolve {
		hold, err := d.prepareResolve(ctx, u.msgs[0], m)
		switch {
		case err != nil:
			return errors.Join(err, d.release(ctx, u.msgs, now.Add(d.o.Poll), ""))
		case hold:
			return d.release(ctx, u.msgs, now.Add(d.o.Poll), "waiting: the page on this channel is not delivered yet")
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 2*d.o.Timeout)
	recoverable, err := ch.n.Notify(sctx, m)
	cancel()
	if err == nil {
		d.m.attempts.WithLabelValues(ch.name, string(m.Kind), "delivered").Inc()
		d.m.sent.WithLabelValues(ch.name).Add(float64(len(u.msgs)))
		d.healthy(ctx, ch, now)
		var errs []error
		for _, x := range u.msgs {
			if err := d.st.Ack(context.WithoutCancel(ctx), x.ID, d.o.Owner, now, m.ProviderID); err != nil {
				errs = append(errs, fmt.Errorf("ack message %d: %w", x.ID, err))
			}
		}
		return errors.Join(errs...)
	}
	text := d.redact.String(err.Error())
	if !recoverable {
		d.m.attempts.WithLabelValues(ch.name, string(m.Kind), "dead").Inc()
		d.m.failures.WithLabelValues(ch.name, "refused").Inc()
		d.failed(ch, now, text, 0, false)
		d.log.Error("notification refused: dead letter", "channel", ch.name, "key", m.Key, "err", text)
		return d.dead(ctx, ch.name, u.msgs, now, "refused: "+text)
	}
	d.m.failures.WithLabelValues(ch.name, "recoverable").Inc()
	retry, n := d.failed(ch, now, text, retryAfter(err), true)
	d.log.Warn("notification failed: will retry", "channel", ch.name, "key", m.Key, "retry_at", retry, "failures", n, "err", text)
	var old, young []assertd.Message
	for _, x := range u.msgs {
		if now.Sub(x.Created) > d.o.MaxAge {
			old = append(old, x)
		} else {
			young = append(young, x)
		}
	}
	result := "failed"
	if len(young) == 0 {
		result = "dead"
	}
	d.m.attempts.WithLabelValues(ch.name, string(m.Kind), result).Inc()
	return errors.Join(
		d.dead(ctx, ch.name, old, now, fmt.Sprintf("gave up after %s: %s", d.o.MaxAge, text)),
		d.release(ctx, young, retry, fmt.Sprintf("attempt failed (%d in a row on %s): %s", n, ch.name, text)))
}

// failed records a failure of ch and returns when it may be tried again.
// A refusal (cool false) counts toward its failing streak only: the next
// message may well be taken.
func (d *Deliverer) failed(ch *channel, now time.Time, text string, after time.Duration, cool bool) (time.Time, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ch.failures == 0 {
		ch.since = now
	}
	ch.failures++
	ch.lastErr = text
	d.m.up.WithLabelValues(ch.name).Set(0)
	if cool {
		ch.until = now.Add(max(d.backoff(ch.failures), after))
	}
	return ch.until, ch.failures
}

// backoff is base·2^(n-1), capped, with jitter in its upper half.
func (d *Deliverer) backoff(n int) time.Duration {
	b := d.o.BackoffMax
	if n < 32 {
		b = min(d.o.BackoffMax, d.o.BackoffBase<<(n-1))
	}
	return b/2 + time.Duration(d.o.Jitter()*float64(b/2))
}

func (d *Deliverer) release(ctx context.Context, ms []assertd.Message, at time.Time, note string) error {
	d.mu.Lock()
	if d.soonest.IsZero() || at.Before(d.soonest) {
		d.soonest = at // Run wakes up for it rather than waiting for its poll
	}
	d.mu.Unlock()
	var errs []error
	for _, m := range ms {
		if err := d.st.Release(context.WithoutCancel(ctx), m.ID, d.o.Owner, at, d.redact.String(note)); err != nil {
			errs = append(errs, fmt.Errorf("release message %d: %w", m.ID, err))
		}
	}
	return errors.Join(errs...)
}

func (d *Deliverer) dead(ctx context.Context, channel string, ms []assertd.Message, now time.Time, why string) error {
	var errs []error
	for _, m := range ms {
		d.m.dead.WithLabelValues(channel).Inc()
		if err := d.st.Nack(context.WithoutCancel(ctx), m.ID, d.o.Owner, now, d.redact.String(why), now, true); err != nil {
			errs = append(errs, fmt.Errorf("dead letter %d: %w", m.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Health reports every channel, in config order.
func (d *Deliverer) Health() []ChannelHealth {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []ChannelHealth
	for _, name := range d.order {
		c := d.chans[name]
		h := ChannelHealth{Name: name, Kind: c.kind, Failing: c.failures > 0, Failures: c.failures, LastError: c.lastErr}
		if c.failures > 0 {
			h.Since, h.RetryAt = c.since, c.until
		}
		out = append(out, h)
	}
	return out
}
