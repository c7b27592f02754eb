// Package alerts is the alert feed: the alerts that each sender reports —
// an Alertmanager posting to assertd's webhook ("alertmanager"), the
// Prometheus rule files assertd evaluates itself ("rules") — as they stand
// now, with when each sender last spoke. Alert-triggered asserts read it
// like a source: an alert is firing, pending or resolved, and every alert
// of a sender that failed or fell silent is uncertain, never ok.
package alerts

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"github.com/assertd/assertd"
)

// State is the state of an alert as its sender reports it.
type State string

// The alert states.
const (
	Pending  State = "pending"
	Firing   State = "firing"
	Resolved State = "resolved"
)

// The senders assertd knows by name.
const (
	SenderAlertmanager = "alertmanager"
	SenderRules        = "rules"
)

// Alert is one alert of a sender.
type Alert struct {
	Labels      assertd.Labels `json:"labels"`
	Annotations assertd.Labels `json:"annotations,omitempty"`
	State       State          `json:"state"`
	// StartsAt is when the alert became active (ActiveAt for rules); with
	// the fingerprint it identifies one episode of the alert.
	StartsAt time.Time `json:"startsAt"`
	// EndsAt is when it resolved; zero while it is active.
	EndsAt       time.Time `json:"endsAt,omitzero"`
	GeneratorURL string    `json:"generatorURL,omitempty"`
	// ExternalURL is where its sender is reached: the externalURL of the
	// Alertmanager that sent it ("" for rules).
	ExternalURL string `json:"externalURL,omitempty"`
	// Fingerprint is Prometheus' fingerprint of Labels (as Alertmanager
	// shows it); Update and Replace fill it in.
	Fingerprint string `json:"fingerprint"`
	// LastSeen is when the sender last reported the alert; set by the feed.
	LastSeen time.Time `json:"lastSeen"`
}

// Fingerprint is Prometheus' fingerprint of a label set, in Alertmanager's
// 16-digit hexadecimal form.
func Fingerprint(ls assertd.Labels) string {
	m := make(model.LabelSet, len(ls))
	for k, v := range ls {
		m[model.LabelName(k)] = model.LabelValue(v)
	}
	return m.Fingerprint().String()
}

// DefaultKeepResolved is how long a resolved alert stays in the feed, so
// that the asserts evaluated after it see it resolve.
const DefaultKeepResolved = 15 * time.Minute

// Feed holds the current alerts of every sender. It is safe for concurrent
// use. The zero value is not usable; use New.
type Feed struct {
	keepResolved time.Duration

	mu      sync.Mutex
	senders map[string]*sender
	changed chan struct{} // closed and replaced at every change
}

type sender struct {
	alerts    map[string]*Alert // by fingerprint
	spoke     time.Time         // last Replace or Update
	err       error             // set by Fail, cleared when it speaks again
	failedAt  time.Time
	allowance time.Duration // no word for longer: uncertain (0: not judged)
}

// New returns an empty feed that keeps resolved alerts for keepResolved
// (0: DefaultKeepResolved).
func New(keepResolved time.Duration) *Feed {
	if keepResolved <= 0 {
		keepResolved = DefaultKeepResolved
	}
	return &Feed{keepResolved: keepResolved, senders: map[string]*sender{}, changed: make(chan struct{})}
}

func (f *Feed) sender(name string) *sender {
	s := f.senders[name]
	if s == nil {
		s = &sender{alerts: map[string]*Alert{}}
		f.senders[name] = s
	}
	return s
}

func (f *Feed) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Changed returns a channel closed at the next change of the feed.
func (f *Feed) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// Expect says how long sender may stay silent: with no Replace or Update
// for longer than d, its alerts are uncertain (d 0: silence is not judged,
// as for an Alertmanager that speaks only when an alert fires).
func (f *Feed) Expect(sender string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sender(sender).allowance = d
}

// Replace makes as the complete set of sender's active alerts at at (after
// an evaluation of a rule group, say): its alerts not in as are resolved.
func (f *Feed) Replace(sender string, as []Alert, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sender(sender)
	s.spoke, s.err = at, nil
	seen := map[string]bool{}
	for _, a := range as {
		a = normalize(a, at)
		seen[a.Fingerprint] = true
		s.alerts[a.Fingerprint] = &a
	}
	for fp, a := range s.alerts {
		if !seen[fp] && a.State != Resolved {
			a.State, a.EndsAt, a.LastSeen = Resolved, at, at
		}
	}
	f.prune(s, at)
	f.notify()
}

// Result counts what an Update did.
type Result struct {
	New      int // alerts (or new episodes of them) the feed did not hold
	Repeated int // reported again as the feed holds them
	Resolved int // active alerts that resolved
	Ignored  int // about an earlier episode than the one held: dropped
}

// Update applies a partial report of sender's alerts at at, such as an
// Alertmanager notification. It is idempotent: an alert reported again with
// the same fingerprint and StartsAt changes nothing but when it was last
// seen; a report about an earlier episode than the one held is ignored.
func (f *Feed) Update(sender string, as []Alert, at time.Time) Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sender(sender)
	s.spoke, s.err = at, nil
	var r Result
	for _, a := range as {
		a = normalize(a, at)
		old := s.alerts[a.Fingerprint]
		switch {
		case old == nil:
			r.New += b2i(a.State != Resolved)
		case a.StartsAt.Before(old.StartsAt):
			r.Ignored++
			continue
		case a.StartsAt.Equal(old.StartsAt) && a.State == old.State:
			r.Repeated++
		case a.StartsAt.Equal(old.StartsAt) && a.State == Resolved:
			r.Resolved++
		case a.StartsAt.Equal(old.StartsAt) && old.State == Resolved:
			// A resolved episode does not start again: a late repeat.
			r.Ignored++
			continue
		case a.State != Resolved:
			r.New++
		}
		s.alerts[a.Fingerprint] = &a
	}
	f.prune(s, at)
	f.notify()
	return r
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Fail records that sender could not evaluate or report at at: its alerts
// are uncertain until it speaks again.
func (f *Feed) Fail(sender string, err error, at time.Time) {
	if err == nil {
		err = errors.New("failed")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sender(sender)
	s.err, s.failedAt = err, at
	f.notify()
}

func normalize(a Alert, at time.Time) Alert {
	a.Labels = a.Labels.Copy()
	a.Annotations = maps.Clone(a.Annotations)
	if a.Fingerprint == "" {
		a.Fingerprint = Fingerprint(a.Labels)
	}
	if a.State == "" {
		a.State = Firing
	}
	if a.State == Resolved && a.EndsAt.IsZero() {
		a.EndsAt = at
	}
	if a.State != Resolved {
		a.EndsAt = time.Time{}
	}
	a.LastSeen = at
	return a
}

// prune drops the alerts resolved longer ago than the feed keeps them.
func (f *Feed) prune(s *sender, now time.Time) {
	for fp, a := range s.alerts {
		if a.State == Resolved && now.Sub(a.EndsAt) > f.keepResolved {
			delete(s.alerts, fp)
		}
	}
}

// ErrNotHeard says a sender has not spoken since the feed started (since
// assertd started: the feed is not stored): its alerts are not known yet.
var ErrNotHeard = fmt.Errorf("%w: not heard from since assertd started", assertd.ErrSourceUnavailable)

// Matcher selects alerts by their labels; *assertd.MatcherSet is one.
type Matcher interface {
	Matches(assertd.Labels) bool
}

// Select returns sender's alerts whose labels m matches (every state,
// resolved ones while the feed keeps them), sorted by fingerprint. The
// error, which wraps assertd.ErrSourceUnavailable, says the alerts cannot
// be trusted: the sender failed, it has been silent for longer than Expect
// allows, or it has not spoken since the feed started (ErrNotHeard).
func (f *Feed) Select(sender string, m Matcher, now time.Time) ([]Alert, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.senders[sender]
	switch {
	case s == nil || s.spoke.IsZero() && s.err == nil:
		return nil, fmt.Errorf("%s: %w", sender, ErrNotHeard)
	case s.err != nil:
		return nil, fmt.Errorf("%w: %s failed at %s: %w", assertd.ErrSourceUnavailable, sender, s.failedAt.UTC().Format(time.RFC3339), s.err)
	case s.allowance > 0 && now.Sub(s.spoke) > s.allowance:
		return nil, fmt.Errorf("%w: no word from %s since %s (it is expected at least every %s): it may be down",
			assertd.ErrSourceUnavailable, sender, s.spoke.UTC().Format(time.RFC3339), assertd.Duration(s.allowance))
	}
	var out []Alert
	for _, a := range s.alerts {
		if m == nil || m.Matches(a.Labels) {
			c := *a
			c.Labels, c.Annotations = c.Labels.Copy(), maps.Clone(c.Annotations)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Alert) int { return strings.Compare(a.Fingerprint, b.Fingerprint) })
	return out, nil
}

// Spoke reports when sender last reported (zero: never).
func (f *Feed) Spoke(sender string) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.senders[sender]; s != nil {
		return s.spoke
	}
	return time.Time{}
}
