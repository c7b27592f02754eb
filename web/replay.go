package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/assertd/assertd"
)

// This file: the replay page. It runs the configuration in force over a
// window of its sources' history on a fake clock and shows what the engine
// would have decided (package replay renders the report; app wires it in
// as Deps.Replay). A replay makes assertd do nothing outside itself (no
// step runs, no channel is sent to), but it reads history and costs CPU,
// so the page bounds it: one at a time, a window of at most
// MaxReplayWindow and MaxReplaySteps evaluations, ReplayTimeout, cancelled
// with its request; and only a caller with credentials runs one (reads may
// be public, a replay is not), or anyone on the loopback listener when no
// credential is configured, as reads are.

// ReplayWindow is the stretch of history a replay runs over: evaluations
// at From, From+Step … To.
type ReplayWindow struct {
	From, To time.Time
	Step     time.Duration
}

// ReplayReport is a replay's report as the page shows it.
type ReplayReport struct {
	// HTML is the report as the replay renders it: the totals, the
	// figures per assert and a timeline per assert.
	HTML template.HTML
}

// Replay runs a replay of the configuration in force. An error that wraps
// ErrReplayRefused is the operator's to fix (the files changed since the
// configuration in force was read …) and is shown as such.
type Replay func(ctx context.Context, w ReplayWindow) (ReplayReport, error)

// ErrReplayRefused is wrapped by the errors of a replay that cannot run as
// asked; the message says why.
var ErrReplayRefused = errors.New("replay refused")

// The replay page's bounds.
const (
	MaxReplayWindow      = 7 * 24 * time.Hour
	MaxReplaySteps       = 20160 // 7d at 30s
	MinReplayStep        = time.Second
	DefaultReplayTimeout = 5 * time.Minute
)

// replayForm is what the form holds, as typed.
type replayForm struct {
	From, To, Step string
}

// replayView is the page's data.
type replayView struct {
	Offered bool
	Form    replayForm
	// The replayed window and how long the replay took; the report.
	Window ReplayWindow
	Took   time.Duration
	Report *ReplayReport
	Limits string
}

func (s *server) replayView(f replayForm) replayView {
	return replayView{Offered: s.d.Replay != nil, Form: f,
		Limits: fmt.Sprintf("at most %s, %d evaluations, %s", human(MaxReplayWindow), MaxReplaySteps, human(s.d.ReplayTimeout))}
}

func (s *server) replayPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "replay", page{Title: "Replay", Nav: "replay", Data: s.replayView(replayForm{From: "24h", To: "now", Step: "30s"})})
}

// formReplay runs a replay and shows its report, or the form with what is
// wrong.
func (s *server) formReplay(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	f := replayForm{From: strings.TrimSpace(r.PostForm.Get("from")), To: strings.TrimSpace(r.PostForm.Get("to")), Step: strings.TrimSpace(r.PostForm.Get("step"))}
	v := s.replayView(f)
	fail := func(status int, msg string) {
		s.render(w, r, status, "replay", page{Title: "Replay", Nav: "replay", Error: msg, Data: v})
	}
	p := principalOf(r.Context())
	if p.session != nil {
		// Not a change, but a cost: a browser's cookie alone does not run one.
		if status, msg := checkCSRF(r, p.session); status != 0 {
			fail(status, msg)
			return
		}
	}
	if p.kind == "" && (s.credentials(s.access.policy()) || !onLoopback(r)) {
		fail(http.StatusUnauthorized, "A replay needs a sign-in: reads may be public here, running a replay is not (sign in with a token).")
		return
	}
	if s.d.Replay == nil {
		fail(http.StatusNotImplemented, "This assertd does not offer replays: run assertd replay on the command line.")
		return
	}
	win, err := parseReplayWindow(f, s.now())
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	if !s.replaying.CompareAndSwap(false, true) {
		w.Header().Set("Retry-After", "30")
		fail(http.StatusTooManyRequests, "A replay is running: one runs at a time. Try again when it has ended.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.d.ReplayTimeout)
	defer cancel()
	// The listener's write timeout is shorter than a replay may take.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.d.ReplayTimeout + 30*time.Second))
	s.log.Info("UI replay", "by", p.Name, "from", win.From, "to", win.To, "step", win.Step)
	began := time.Now()
	rep, err := func() (ReplayReport, error) {
		defer s.replaying.Store(false) // before the answer: the next may start once this one is read
		return s.d.Replay(ctx, win)
	}()
	v.Window, v.Took = win, time.Since(began).Round(time.Millisecond)
	switch {
	case err == nil:
		v.Report = &rep
		s.render(w, r, http.StatusOK, "replay", page{Title: "Replay", Nav: "replay", Data: v})
	case errors.Is(err, ErrReplayRefused):
		fail(http.StatusConflict, strings.TrimPrefix(err.Error(), ErrReplayRefused.Error()+": "))
	case r.Context().Err() != nil:
		// The browser went away: nobody reads the answer.
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		fail(http.StatusGatewayTimeout, fmt.Sprintf("The replay took longer than %s and was stopped: shorten the window or widen the step (assertd replay on the command line has no such bound).", human(s.d.ReplayTimeout)))
	default:
		s.log.Error("UI replay", "err", err)
		fail(http.StatusInternalServerError, "The replay failed: "+err.Error())
	}
}

// parseReplayWindow reads the form: from and to a duration ago (24h, 7d)
// or an RFC 3339 time (to also "now"), the step a duration; the window
// within the page's bounds.
func parseReplayWindow(f replayForm, now time.Time) (ReplayWindow, error) {
	from, err := replayTime(f.From, now)
	if err != nil {
		return ReplayWindow{}, fmt.Errorf("from: %w", err)
	}
	to := now
	if f.To != "" {
		if to, err = replayTime(f.To, now); err != nil {
			return ReplayWindow{}, fmt.Errorf("to: %w", err)
		}
	}
	step := 30 * time.Second
	if f.Step != "" {
		d, err := assertd.ParseDuration(f.Step)
		if err != nil || d < MinReplayStep {
			return ReplayWindow{}, fmt.Errorf("step %q: write a duration of at least %s, such as 30s or 1m", f.Step, human(MinReplayStep))
		}
		step = d
	}
	w := ReplayWindow{From: from, To: to, Step: step}
	switch span := to.Sub(from); {
	case to.After(now):
		return w, fmt.Errorf("to %s is in the future: the history ends now (%s)", stamp(to), stamp(now))
	case span <= 0:
		return w, fmt.Errorf("the window is empty: from %s is not before to %s", stamp(from), stamp(to))
	case span > MaxReplayWindow:
		return w, fmt.Errorf("the window is %s long: a replay here covers at most %s (shorten it, or run assertd replay on the command line)", human(span), human(MaxReplayWindow))
	case int64(span/step)+1 > MaxReplaySteps:
		return w, fmt.Errorf("the window has %d evaluations at step %s: a replay here makes at most %d (widen the step or shorten the window)", int64(span/step)+1, f.Step, MaxReplaySteps)
	}
	return w, nil
}

// replayTime reads now, a duration ago (24h, 7d, "24h ago") or an RFC 3339
// time.
func replayTime(s string, now time.Time) (time.Time, error) {
	switch s {
	case "":
		return time.Time{}, errors.New("write a duration ago (24h, 7d) or a time such as 2026-11-22T01:00:00Z")
	case "now":
		return now, nil
	}
	if d, err := assertd.ParseDuration(strings.TrimSuffix(s, " ago")); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s: write a duration ago (24h, 7d) or a time such as %s", strconv.Quote(s), now.UTC().Add(-24*time.Hour).Truncate(time.Hour).Format(time.RFC3339))
}
