package fakeclock

import (
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestAfterFiresInOrderWhenTheClockPassesTheDeadline(t *testing.T) {
	c := New(t0)
	late, early := c.After(2*time.Second), c.After(time.Second)
	if c.Waiters() != 2 {
		t.Fatalf("waiters = %d, want 2", c.Waiters())
	}
	if at, ok := c.Next(); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("Next = %v %v", at, ok)
	}
	c.Add(1500 * time.Millisecond)
	select {
	case got := <-early:
		if !got.Equal(t0.Add(time.Second)) {
			t.Fatalf("fired at %v", got)
		}
	default:
		t.Fatal("the due wait did not fire")
	}
	select {
	case <-late:
		t.Fatal("a wait fired before its deadline")
	default:
	}
	if c.Waiters() != 1 {
		t.Fatalf("waiters = %d, want 1", c.Waiters())
	}
	c.Set(t0) // never backwards
	if !c.Now().Equal(t0.Add(1500 * time.Millisecond)) {
		t.Fatalf("clock moved backwards to %v", c.Now())
	}
}

func TestAutoClockMovesByEachWait(t *testing.T) {
	c := NewAuto(t0)
	<-c.After(time.Minute)
	<-c.After(time.Second)
	if got := c.Now().Sub(t0); got != time.Minute+time.Second || c.Slept() != got {
		t.Fatalf("moved %v, slept %v", got, c.Slept())
	}
}

func TestSettleWaitsUntilTheBusyGoroutineWaitsOnTheClock(t *testing.T) {
	c := New(t0)
	var busy atomic.Int32
	busy.Store(1)
	release := make(chan struct{})
	go func() {
		<-release
		<-c.After(time.Hour)
	}()
	if err := c.Settle(func() int { return int(busy.Load()) }, 10*time.Millisecond); err == nil {
		t.Fatal("Settle returned while the goroutine was still busy")
	}
	close(release)
	if err := c.Settle(func() int { return int(busy.Load()) }, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if c.Waiters() != 1 {
		t.Fatalf("waiters = %d", c.Waiters())
	}
}

func TestJumpMovesBackwardsAndKeepsDeadlines(t *testing.T) {
	c := New(t0)
	c.Add(time.Hour)
	w := c.After(time.Minute) // due at t0 + 1h1m
	c.Jump(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("now = %v, want %v", c.Now(), t0)
	}
	c.Jump(t0.Add(time.Hour + 30*time.Second))
	select {
	case <-w:
		t.Fatal("a wait fired before its deadline")
	default:
	}
	c.Jump(t0.Add(time.Hour + time.Minute))
	select {
	case got := <-w:
		if !got.Equal(t0.Add(time.Hour + time.Minute)) {
			t.Fatalf("fired at %v", got)
		}
	default:
		t.Fatal("the due wait did not fire")
	}
	if c.Waiters() != 0 {
		t.Fatalf("waiters = %d", c.Waiters())
	}
}

func TestStopCancelsAWaitSoSettleDoesNotCountIt(t *testing.T) {
	c := New(t0)
	stopped, kept := c.After(time.Minute), c.After(time.Minute)
	if !c.Stop(stopped) || c.Stop(stopped) {
		t.Fatal("Stop does not report whether the wait was pending")
	}
	if c.Waiters() != 1 {
		t.Fatalf("waiters = %d, want 1", c.Waiters())
	}
	// One busy goroutine and no wait but a stopped one: not settled.
	c.Stop(kept)
	if err := c.Settle(func() int { return 1 }, 10*time.Millisecond); err == nil {
		t.Fatal("Settle counted a stopped wait")
	}
	c.Add(time.Hour)
	select {
	case <-stopped:
		t.Fatal("a stopped wait fired")
	default:
	}
}

func TestAtFiresAtItsTimeEvenWhenTheClockMovedFirst(t *testing.T) {
	c := New(t0)
	due := t0.Add(time.Minute)
	c.Set(t0.Add(30 * time.Second)) // moved between a reading and the wait
	ch := c.At(due)
	c.Set(due)
	select {
	case got := <-ch:
		if !got.Equal(due) {
			t.Fatalf("fired at %v", got)
		}
	default:
		t.Fatal("At did not fire when the clock reached its time")
	}
	select {
	case <-c.At(t0):
	default:
		t.Fatal("At of a past time did not fire at once")
	}
}
