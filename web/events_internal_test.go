package web

import (
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeState is a state the test changes; computed counts the calls.
type fakeState struct {
	version  atomic.Int64
	computed atomic.Int64
}

func (f *fakeState) get() eventState {
	f.computed.Add(1)
	return eventState{Version: strconv.FormatInt(f.version.Load(), 10), Problems: int(f.version.Load())}
}

// take returns the event waiting for sub, if any.
func take(sub *subscriber) (event, bool) {
	select {
	case ev := <-sub.next:
		return ev, true
	default:
		return event{}, false
	}
}

// TestHubOneStatePerTick: however many streams are open, the state is
// computed once per interval, encoded once, and every stream gets the same
// bytes; an unchanged state is not sent again.
func TestHubOneStatePerTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeState{}
		h := newHub(time.Second, f.get)
		var subs []*subscriber
		for range 50 {
			subs = append(subs, h.subscribe())
		}
		f.version.Store(1)
		time.Sleep(time.Second) // the fake clock of the bubble: one tick
		synctest.Wait()
		if n := f.computed.Load(); n != 1 {
			t.Fatalf("state computed %d times for 50 streams in one tick, want 1", n)
		}
		first, ok := take(subs[0])
		if !ok || first.version != "1/0" {
			t.Fatalf("stream 0 got %+v %v", first, ok)
		}
		for i, sub := range subs[1:] {
			ev, ok := take(sub)
			if !ok || &ev.data[0] != &first.data[0] {
				t.Fatalf("stream %d did not get the shared event: %+v %v", i+1, ev, ok)
			}
		}
		time.Sleep(time.Second) // unchanged: nothing sent
		synctest.Wait()
		for i, sub := range subs {
			if ev, ok := take(sub); ok {
				t.Fatalf("stream %d got an unchanged state again: %s", i, ev.data)
			}
		}
		if n := f.computed.Load(); n != 2 {
			t.Fatalf("state computed %d times in two ticks, want 2", n)
		}
		for _, sub := range subs {
			h.unsubscribe(sub)
		}
		// The last stream out stopped the loop: the bubble ends only
		// when every goroutine of it has.
		time.Sleep(10 * time.Second)
		if n := f.computed.Load(); n != 2 {
			t.Fatalf("state computed %d times with no stream open", n)
		}
	})
}

// TestHubSlowStream: a stream that takes nothing neither blocks the hub
// nor the other streams; it holds only the latest state, so when it reads
// again it skips to now.
func TestHubSlowStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeState{}
		h := newHub(time.Second, f.get)
		slow, fast := h.subscribe(), h.subscribe()
		for v := int64(1); v <= 5; v++ {
			f.version.Store(v)
			time.Sleep(time.Second)
			synctest.Wait()
			ev, ok := take(fast)
			if want := strconv.FormatInt(v, 10) + "/0"; !ok || ev.version != want {
				t.Fatalf("fast stream at %d: %+v %v, want %s", v, ev, ok, want)
			}
		}
		if n := f.computed.Load(); n != 5 {
			t.Fatalf("state computed %d times in 5 ticks, want 5: the slow stream held the hub up", n)
		}
		ev, ok := take(slow)
		if !ok || ev.version != "5/0" {
			t.Fatalf("the slow stream holds %+v %v, want only the latest (5)", ev, ok)
		}
		if ev, ok := take(slow); ok {
			t.Fatalf("the slow stream held more than the latest: %s", ev.data)
		}
		h.unsubscribe(slow)
		h.unsubscribe(fast)
	})
}
