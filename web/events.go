package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/assertd/assertd"
)

// eventState is the data of a "state" event: enough for a page to update
// its title and to know it is out of date.
type eventState struct {
	Version  string                `json:"version"` // changes with any instance's state
	Problems int                   `json:"problems"`
	Counts   map[assertd.State]int `json:"counts"`
	Held     int                   `json:"held_changes"`
}

// snapshot is the state every page and every event stream shows, from the
// engine's summary (one pass over the instances, no copy of them).
func (s *server) snapshot() eventState {
	sum := s.d.Engine.Summary()
	problems := 0
	for st, n := range sum.Counts {
		if problem(assertd.Instance{State: st}) {
			problems += n
		}
	}
	return eventState{Version: strconv.FormatUint(sum.Version, 16), Problems: problems, Counts: sum.Counts, Held: s.d.Engine.Held()}
}

// eventWriteTimeout bounds one write to an event stream: a client that
// does not read for this long is disconnected.
const eventWriteTimeout = 10 * time.Second

// events streams server-sent events: a "state" event at once and whenever an
// instance changes, and a comment every 15s to keep proxies from closing it.
// The state is computed once for every open stream (see hub); a stream
// whose client reads slowly skips to the latest state.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	write := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	sub := s.hub.subscribe()
	defer s.hub.unsubscribe(sub)
	w.WriteHeader(http.StatusOK)
	// The first event is the state now, computed for this stream alone.
	first := stateEvent(s.snapshot())
	if write(first.data) != nil {
		return
	}
	last := first.version
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			if write([]byte(": keep-alive\n\n")) != nil {
				return
			}
		case ev := <-sub.next:
			if ev.version == last {
				continue // what this stream sent first
			}
			last = ev.version
			if write(ev.data) != nil {
				return
			}
		}
	}
}

// event is one "state" event, encoded once for every stream.
type event struct {
	version string // the state's version and held changes
	data    []byte
}

func stateEvent(st eventState) event {
	b, _ := json.Marshal(st)
	return event{version: st.Version + "/" + strconv.Itoa(st.Held),
		data: fmt.Appendf(nil, "event: state\nid: %s\ndata: %s\n\n", st.Version, b)}
}

// hub fans the state out to the open event streams: while at least one is
// open, one goroutine looks at the state every interval and, when it
// changed, encodes it once and hands the same bytes to every stream. A
// stream holds at most one event not yet written: a newer one replaces it,
// so a slow client skips states and never holds up the others or the
// engine.
type hub struct {
	every time.Duration
	state func() eventState

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	stop    chan struct{} // closed to end the running loop; nil: none runs
	stopped chan struct{} // closed when it has ended
	states  int           // states computed by the loop (for tests)
}

type subscriber struct {
	next chan event // capacity 1: the latest state not yet taken
}

func newHub(every time.Duration, state func() eventState) *hub {
	return &hub{every: every, state: state, subs: map[*subscriber]struct{}{}}
}

// subscribe adds a stream, starting the loop if it is the first.
func (h *hub) subscribe() *subscriber {
	sub := &subscriber{next: make(chan event, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[sub] = struct{}{}
	if h.stop == nil {
		h.stop, h.stopped = make(chan struct{}), make(chan struct{})
		go h.loop(h.stop, h.stopped)
	}
	return sub
}

// unsubscribe removes a stream; the last one out stops the loop and waits
// for it to end.
func (h *hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	delete(h.subs, sub)
	var stopped chan struct{}
	if len(h.subs) == 0 && h.stop != nil {
		close(h.stop)
		stopped = h.stopped
		h.stop, h.stopped = nil, nil
	}
	h.mu.Unlock()
	if stopped != nil {
		<-stopped
	}
}

func (h *hub) loop(stop, stopped chan struct{}) {
	defer close(stopped)
	tick := time.NewTicker(h.every)
	defer tick.Stop()
	last := ""
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		ev := stateEvent(h.state())
		h.mu.Lock()
		h.states++
		h.mu.Unlock()
		if ev.version == last {
			continue
		}
		last = ev.version
		h.publish(ev)
	}
}

// publish hands ev to every stream without waiting for any: one that has
// not taken the previous event gets this one instead.
func (h *hub) publish(ev event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		select {
		case sub.next <- ev:
			continue
		default:
		}
		select { // only publish sends, under h.mu: after this, there is room
		case <-sub.next:
		default:
		}
		sub.next <- ev
	}
}
