// Package fakeclock is the one injected clock of assertd's tests and of
// `assertd test`: time moves only when the caller moves it, waits fire when
// the clock passes their deadline, and Settle waits until every goroutine
// that is busy (by the caller's count) is blocked on the clock, so that the
// clock moves only when nothing else can happen.
package fakeclock

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"
)

// Clock is a manual clock. The zero value is not usable; use New.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	auto   bool
	slept  time.Duration
	timers []timer
	moved  chan struct{} // closed and replaced whenever a waiter is added
}

type timer struct {
	at time.Time
	ch chan time.Time
}

// New returns a clock that reads start.
func New(start time.Time) *Clock {
	return &Clock{now: start, moved: make(chan struct{})}
}

// NewAuto returns a clock on which every wait returns at once and moves the
// time on by its length (a run's waits take no real time).
func NewAuto(start time.Time) *Clock {
	c := New(start)
	c.auto = true
	return c
}

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After fires when the clock reaches now+d (at once when d <= 0).
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if c.auto && d > 0 {
		c.now = c.now.Add(d)
		c.slept += d
	}
	if d <= 0 || c.auto {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, timer{at: c.now.Add(d), ch: ch})
	close(c.moved)
	c.moved = make(chan struct{})
	return ch
}

// Stop cancels the wait whose channel After returned, so that it no longer
// counts as a goroutine waiting on the clock: a goroutine woken by
// something else than the clock (an approval decided) stops its wait
// before it is woken. It reports whether the wait was still pending.
func (c *Clock) Stop(ch <-chan time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, tm := range c.timers {
		if tm.ch == ch {
			c.timers = slices.Delete(c.timers, i, i+1)
			return true
		}
	}
	return false
}

// At fires when the clock reaches t (at once when it has). Unlike
// After(t.Sub(Now())), it cannot miss t when the clock moves between the
// reading and the wait.
func (c *Clock) At(t time.Time) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !t.After(c.now) {
		ch <- c.now
		return ch
	}
	if c.auto {
		c.slept += t.Sub(c.now)
		c.now = t
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, timer{at: t, ch: ch})
	close(c.moved)
	c.moved = make(chan struct{})
	return ch
}

// Slept is the total waited on an automatic clock.
func (c *Clock) Slept() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slept
}

// Set moves the clock to t (never backwards) and fires the waits that are
// due, earliest first.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.Before(c.now) {
		return
	}
	c.moveTo(t)
}

// Jump moves the clock to t, backwards too: a wall clock stepped back, or a
// test that reads the state at an earlier instant. Waits keep their
// deadlines; those due at t fire.
func (c *Clock) Jump(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.moveTo(t)
}

func (c *Clock) moveTo(t time.Time) {
	c.now = t
	slices.SortStableFunc(c.timers, func(a, b timer) int { return a.at.Compare(b.at) })
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if !tm.at.After(t) {
			tm.ch <- tm.at
			continue
		}
		kept = append(kept, tm)
	}
	c.timers = kept
}

// Add moves the clock on by d and returns the new time.
func (c *Clock) Add(d time.Duration) time.Time {
	c.Set(c.Now().Add(d))
	return c.Now()
}

// Waiters counts the waits not yet fired.
func (c *Clock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Next is the earliest deadline of a wait, and false when none waits.
func (c *Clock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	at := c.timers[0].at
	for _, tm := range c.timers[1:] {
		if tm.at.Before(at) {
			at = tm.at
		}
	}
	return at, true
}

// Settle returns once busy() goroutines are all waiting on the clock
// (busy() <= Waiters()), or an error after timeout of real time. busy counts
// the goroutines that do work the caller waits for, such as the remediation
// runs in flight.
func (c *Clock) Settle(busy func() int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		n, moved := len(c.timers), c.moved
		c.mu.Unlock()
		b := busy()
		if b <= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fakeclock: %d goroutines busy, %d waiting on the clock after %s", b, n, timeout)
		}
		// Wake on a new waiter, or look again shortly (a goroutine that
		// finishes does not wait on the clock).
		runtime.Gosched()
		select {
		case <-moved:
		case <-time.After(200 * time.Microsecond):
		}
	}
}
