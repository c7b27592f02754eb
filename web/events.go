package web

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
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

func (s *server) snapshot() eventState {
	ins := s.d.Engine.Instances()
	h := fnv.New64a()
	for _, in := range ins {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%d\x00%t\x00", in.Assert, in.Fingerprint, in.State, in.Silenced, in.Since.UnixMicro(), in.Held)
	}
	return eventState{Version: fmt.Sprintf("%x", h.Sum64()), Problems: problems(ins), Counts: counts(ins), Held: s.d.Engine.Held()}
}

// events streams server-sent events: a "state" event at once and whenever an
// instance changes, and a comment every 15s to keep proxies from closing it.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // long-lived, unlike other answers
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(st eventState) error {
		b, _ := json.Marshal(st)
		if _, err := fmt.Fprintf(w, "event: state\nid: %s\ndata: %s\n\n", st.Version, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	last := s.snapshot()
	if err := send(last); err != nil {
		return
	}
	tick := time.NewTicker(s.d.EventEvery)
	defer tick.Stop()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-tick.C:
			st := s.snapshot()
			if st.Version == last.Version && st.Held == last.Held {
				continue
			}
			last = st
			if err := send(st); err != nil {
				return
			}
		}
	}
}
