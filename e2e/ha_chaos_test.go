package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/testprom"
	"github.com/assertd/assertd/store"
)

// Takeover time: the owner of a violated instance's share is killed; the
// time until another replica evaluates the assert, over 20 kills (the
// killed replica is restarted each time). Lease 2s, renew 500ms, every 500ms:
// each must be within lease + renew + interval and a margin for the load.
func TestTakeoverTime(t *testing.T) {
	t.Parallel()
	ids := []string{"00"}
	c := newHACluster(t, haOptions{replicas: 3, lease: "2s", renew: "500ms", every: "500ms", ids: ids, rules: chaosRules(ids, "1h", "1s")})
	for _, r := range c.replicas {
		r.start()
	}
	const share = "chaos-00"
	c.target.set("00", true) // violated, pending for an hour: evaluated, never acted on
	var took []time.Duration
	for range 20 {
		var owner *replica
		testprom.Eventually(t, 20*time.Second, func() error {
			if owner, _ = c.owner(share); owner == nil {
				return fmt.Errorf("nobody owns %s", share)
			}
			if n := owner.evaluations(share); n < 1 {
				return fmt.Errorf("its owner %s has not evaluated it yet", owner.name)
			}
			return nil
		})
		base := map[*replica]float64{}
		for _, r := range c.replicas {
			if r != owner {
				base[r] = r.evaluations(share)
			}
		}
		owner.kill9()
		killed := time.Now()
		var d time.Duration
		testprom.Eventually(t, 20*time.Second, func() error {
			for r, n := range base {
				if r.evaluations(share) > n {
					d = time.Since(killed)
					return nil
				}
			}
			return fmt.Errorf("no other replica evaluated %s since the kill", share)
		})
		took = append(took, d)
		owner.start()
	}
	slices.Sort(took)
	p50, p99 := took[len(took)/2], took[len(took)-1]
	t.Logf("takeover after kill -9 (lease 2s, renew 500ms, every 500ms), 20 kills: p50 %s, p99 %s, min %s",
		p50.Round(time.Millisecond), p99.Round(time.Millisecond), took[0].Round(time.Millisecond))
	if limit := 2*time.Second + 500*time.Millisecond + 500*time.Millisecond + 2*time.Second; p99 > limit {
		t.Errorf("p99 takeover %s, want at most %s", p99, limit)
	}
}

// violation is one injected fault of one assert, from injection until the
// page's resolve was seen.
type violation struct {
	id         string
	start, end time.Time
}

// The chaos suite: 3 replicas, 30 asserts with remediations; for the
// duration, a random replica is killed (-9) and restarted every ~10s while
// faults are injected and cleared. Every violation must be remediated
// once (or once plus runs interrupted by a kill), opened as exactly one
// PagerDuty incident, and no page lost.
func TestChaos(t *testing.T) {
	t.Parallel()
	const duration = 3 * time.Minute
	ids := chaosIDs(30)
	c := newHACluster(t, haOptions{replicas: 3, lease: "2s", renew: "500ms", every: "500ms", ids: ids, rules: chaosRules(ids, "1s", "1s")})
	for _, r := range c.replicas {
		r.start()
	}
	testprom.Eventually(t, 30*time.Second, func() error {
		for _, id := range ids {
			if o, _ := c.owner("chaos-" + id); o == nil {
				return fmt.Errorf("chaos-%s has no owner", id)
			}
		}
		return nil
	})
	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	var mu sync.Mutex
	var vs []violation
	var stuck []string
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			for ctx.Err() == nil {
				select {
				case <-ctx.Done():
				case <-time.After(time.Duration(rand.IntN(4000)) * time.Millisecond):
				}
				if ctx.Err() != nil {
					return
				}
				v := violation{id: id, start: time.Now()}
				c.target.set(id, true)
				ok := waitFor(90*time.Second, func() bool { return c.pdOpen("chaos-"+id, v.start) })
				c.target.set(id, false)
				ok = waitFor(90*time.Second, func() bool { return c.pdResolved("chaos-"+id, v.start) }) && ok
				v.end = time.Now()
				mu.Lock()
				vs = append(vs, v)
				if !ok {
					stuck = append(stuck, fmt.Sprintf("chaos-%s from %s", id, v.start.Format("15:04:05.000")))
				}
				mu.Unlock()
			}
		})
	}
	kills := 0
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(8000+rand.IntN(4000)) * time.Millisecond):
		}
		if ctx.Err() != nil {
			break
		}
		r := c.replicas[rand.IntN(len(c.replicas))]
		r.kill9()
		kills++
		r.start()
	}
	wg.Wait()

	// Count from the fakes and the store.
	st := context.Background()
	var doubleRuns, dupIncidents, lost, interrupted, executions, runsTotal, triggers int
	var problems []string
	for _, v := range vs {
		assert := "chaos-" + v.id
		runs, err := c.st.Runs(st, store.RunFilter{Assert: assert})
		if err != nil {
			t.Fatal(err)
		}
		var inWindow, intr int
		for _, r := range runs {
			if !r.Started.Before(v.start) && r.Started.Before(v.end) {
				inWindow++
				if r.Status == assertd.RunInterrupted {
					intr++
				}
			}
		}
		calls := c.target.callsOf("call", v.id, v.start, v.end)
		again := c.target.callsOf("again", v.id, v.start, v.end)
		opened, trig := c.pdIncidents(assert, v.start, v.end)
		runsTotal += inWindow
		interrupted += intr
		executions += calls
		triggers += trig
		switch {
		case calls > inWindow || again > inWindow || inWindow-intr > 1 || (inWindow == 0 && calls > 0):
			doubleRuns++
			problems = append(problems, fmt.Sprintf("%s at %s: %d runs (%d interrupted), %d first-step calls, %d second-step calls",
				assert, v.start.Format("15:04:05.000"), inWindow, intr, calls, again))
		}
		switch {
		case opened == 0:
			lost++
			problems = append(problems, fmt.Sprintf("%s at %s: never paged", assert, v.start.Format("15:04:05.000")))
		case opened > 1:
			dupIncidents++
			problems = append(problems, fmt.Sprintf("%s at %s: %d PagerDuty incidents", assert, v.start.Format("15:04:05.000"), opened))
		}
	}
	slackPages := 0
	for _, p := range c.slack.Posts() {
		if strings.Contains(p.Text+p.Blocks, "chaos-") {
			slackPages++
		}
	}
	t.Logf("chaos: %s, 3 replicas, %d kill -9 + restart, %d violations of 30 asserts; %d runs (%d interrupted by a kill), %d remediation executions; "+
		"%d PagerDuty triggers; %d Slack posts; double runs %d, duplicate incidents %d, lost pages %d",
		duration, kills, len(vs), runsTotal, interrupted, executions, triggers, slackPages, doubleRuns, dupIncidents, lost)
	for _, p := range problems {
		t.Error(p)
	}
	for _, s := range stuck {
		t.Errorf("not paged and resolved in time: %s", s)
	}
	if len(vs) < 60 || kills < int(duration/(13*time.Second)) {
		t.Errorf("too little happened: %d violations, %d kills", len(vs), kills)
	}
}

func waitFor(timeout time.Duration, f func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if f() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// pdOpen reports whether an incident of the assert was triggered since from.
func (c *haCluster) pdOpen(assert string, from time.Time) bool {
	for _, e := range c.pd.Events() {
		if e.Action == "trigger" && strings.HasPrefix(e.DedupKey, "assertd/"+assert+"/") && !e.At.Before(from) {
			return true
		}
	}
	return false
}

// pdResolved reports whether the assert's incident was resolved after
// being triggered since from.
func (c *haCluster) pdResolved(assert string, from time.Time) bool {
	triggered := false
	for _, e := range c.pd.Events() {
		if !strings.HasPrefix(e.DedupKey, "assertd/"+assert+"/") || e.At.Before(from) {
			continue
		}
		switch e.Action {
		case "trigger":
			triggered = true
		case "resolve":
			if triggered {
				return true
			}
		}
	}
	return false
}

// pdIncidents counts the incidents of the assert opened in [from, to) — a
// trigger while none is open, as PagerDuty counts them — and the triggers.
func (c *haCluster) pdIncidents(assert string, from, to time.Time) (opened, triggers int) {
	open := map[string]bool{}
	for _, e := range c.pd.Events() {
		if !strings.HasPrefix(e.DedupKey, "assertd/"+assert+"/") {
			continue
		}
		in := !e.At.Before(from) && e.At.Before(to)
		switch e.Action {
		case "trigger":
			if !open[e.DedupKey] && in {
				opened++
			}
			if in {
				triggers++
			}
			open[e.DedupKey] = true
		case "resolve":
			open[e.DedupKey] = false
		}
	}
	return opened, triggers
}
