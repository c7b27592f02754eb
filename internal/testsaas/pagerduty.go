package testsaas

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Event is an Events API v2 event as the fake received it.
type Event struct {
	RoutingKey string `json:"routing_key"`
	Action     string `json:"event_action"`
	DedupKey   string `json:"dedup_key"`
	Payload    *struct {
		Summary  string         `json:"summary"`
		Source   string         `json:"source"`
		Severity string         `json:"severity"`
		Details  map[string]any `json:"custom_details"`
	} `json:"payload"`
	Links []map[string]string `json:"links"`
	// At is when the fake received the request (not part of the event).
	At time.Time `json:"-"`
}

// PagerDuty fakes the Events API v2 endpoint (POST /v2/enqueue). It keeps
// incidents the way PagerDuty does: a trigger on a dedup key with an open
// incident adds to it; one on a resolved or unknown key opens a new one.
type PagerDuty struct {
	faults
	URL string // the events_url to configure: ends in /v2/enqueue

	srv       *httptest.Server
	mu        sync.Mutex
	events    []Event
	changes   []ChangeEvent
	open      map[string]bool
	acked     map[string]bool
	incidents int
	keys      map[string]bool
	webhooks  int
}

// ChangeEvent is an Events API v2 change event as the fake received it.
type ChangeEvent struct {
	RoutingKey string `json:"routing_key"`
	Payload    struct {
		Summary   string         `json:"summary"`
		Source    string         `json:"source"`
		Timestamp string         `json:"timestamp"`
		Details   map[string]any `json:"custom_details"`
	} `json:"payload"`
	Links []map[string]string `json:"links"`
}

// NewPagerDuty starts the fake on 127.0.0.1; it stops with the test.
func NewPagerDuty(t testing.TB, routingKey string) *PagerDuty {
	p := &PagerDuty{open: map[string]bool{}, acked: map[string]bool{}, keys: map[string]bool{routingKey: true}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/enqueue", func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		if p.serveFault(w, r) {
			return
		}
		e := Event{At: at}
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil || !p.keys[e.RoutingKey] ||
			(e.Action == "trigger" && (e.Payload == nil || e.Payload.Summary == "" || len(e.Payload.Summary) > 1024)) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"status":"invalid event","message":"Event object is invalid"}`))
			return
		}
		p.mu.Lock()
		p.events = append(p.events, e)
		switch e.Action {
		case "trigger":
			if !p.open[e.DedupKey] {
				p.incidents++
			}
			p.open[e.DedupKey] = true
			p.acked[e.DedupKey] = false
		case "acknowledge":
			p.acked[e.DedupKey] = p.open[e.DedupKey]
		case "resolve":
			p.open[e.DedupKey], p.acked[e.DedupKey] = false, false
		}
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "success", "message": "Event processed", "dedup_key": e.DedupKey})
	})
	mux.HandleFunc("POST /v2/change/enqueue", func(w http.ResponseWriter, r *http.Request) {
		if p.serveFault(w, r) {
			return
		}
		var e ChangeEvent
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil || !p.keys[e.RoutingKey] || e.Payload.Summary == "" || len(e.Payload.Summary) > 1024 {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"status":"invalid event","message":"Event object is invalid"}`))
			return
		}
		p.mu.Lock()
		p.changes = append(p.changes, e)
		p.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"status":"success","message":"Change event processed"}`))
	})
	p.srv = httptest.NewUnstartedServer(mux)
	p.srv.Listener.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.srv.Listener = ln
	p.srv.Start()
	t.Cleanup(p.srv.Close)
	p.URL = p.srv.URL + "/v2/enqueue"
	return p
}

// Events returns the events accepted so far.
func (p *PagerDuty) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.events...)
}

// Incidents counts the incidents opened so far.
func (p *PagerDuty) Incidents() int { p.mu.Lock(); defer p.mu.Unlock(); return p.incidents }

// Open reports whether the incident with this dedup key is open.
func (p *PagerDuty) Open(dedupKey string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open[dedupKey]
}

// Acknowledged reports whether the open incident with this dedup key was
// acknowledged (by an acknowledge event since its last trigger).
func (p *PagerDuty) Acknowledged(dedupKey string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked[dedupKey]
}

// ChangeEvents returns the change events accepted so far.
func (p *PagerDuty) ChangeEvents() []ChangeEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ChangeEvent(nil), p.changes...)
}
