package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/testprom"
	"github.com/assertd/assertd/store"
)

// A second assertd run on a SQLite file in use stops at once, non-zero,
// saying which file, who holds it and what to do instead.
func TestSecondRunOnSQLiteRefused(t *testing.T) {
	t.Parallel()
	r := newRig(t, "", "asserts: [{name: up, query: {u: vector(1)}, expect: u == 1}]\n")
	r.start()
	out, err := exec.Command(binary, "run", "-c", r.cfg, "--listen", "127.0.0.1:0").CombinedOutput()
	code := -1
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	if code <= 0 {
		t.Fatalf("second run: exit %d (%v), want non-zero\n%s", code, err, out)
	}
	for _, want := range []string{"another assertd is running on the SQLite file", "assertd.db", fmt.Sprintf("process %d holds", r.p.Process.Pid), "PostgreSQL"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal lacks %q:\n%s", want, out)
		}
	}
	// The first one keeps serving.
	if code, _ := (&replica{base: r.base}).get("/readyz"); code != 200 {
		t.Fatalf("the first assertd is not ready after the refusal: %d", code)
	}
}

// The owner of a share is stopped (SIGSTOP) while its run pauses between
// two steps; past its lease another replica takes the share over, marks the
// run interrupted and pages once; resumed (SIGCONT), the old owner's writes
// are fenced: it runs no further step and commits nothing.
func TestZombieReplicaCommitsNothing(t *testing.T) {
	t.Parallel()
	ids := []string{"00"}
	c := newHACluster(t, haOptions{replicas: 2, lease: "2s", renew: "500ms", every: "500ms", ids: ids, rules: chaosRules(ids, "1s", "8s")})
	for _, r := range c.replicas {
		r.start()
	}
	const share = "chaos-00"
	var zombie *replica
	var epoch int64
	testprom.Eventually(t, 20*time.Second, func() error {
		if zombie, epoch = c.owner(share); zombie == nil {
			return fmt.Errorf("nobody owns %s", share)
		}
		return nil
	})
	c.target.set("00", true)
	start := time.Now()
	testprom.Eventually(t, 30*time.Second, func() error {
		if n := c.target.callsOf("call", "00", start, time.Now().Add(time.Hour)); n != 1 {
			return fmt.Errorf("%d calls of the first step", n)
		}
		return nil
	})
	zombie, epoch = c.owner(share)
	zombie.signal(syscall.SIGSTOP)
	stopped := time.Now()
	var heir *replica
	var newEpoch int64
	testprom.Eventually(t, 20*time.Second, func() error {
		heir, newEpoch = c.owner(share)
		if heir == nil || heir == zombie {
			return fmt.Errorf("%s still owned by the stopped replica", share)
		}
		return nil
	})
	took := time.Since(stopped)
	if newEpoch <= epoch {
		t.Fatalf("epoch %d after the takeover, was %d", newEpoch, epoch)
	}
	ctx := context.Background()
	testprom.Eventually(t, 20*time.Second, func() error {
		runs, _ := c.st.Runs(ctx, store.RunFilter{Assert: share})
		if len(runs) != 1 || runs[0].Status != assertd.RunInterrupted {
			return fmt.Errorf("runs %+v", runs)
		}
		if n := triggersOf(c, share, start); n != 1 {
			msgs, _ := c.st.Messages(ctx, store.MessageFilter{})
			var b strings.Builder
			for _, m := range msgs {
				fmt.Fprintf(&b, "%s %s %s %s %q\n", m.Key, m.Channel, m.Status, m.DedupKey, m.LastError)
			}
			return fmt.Errorf("%d PagerDuty triggers; outbox:\n%s", n, b.String())
		}
		return nil
	})
	zombie.signal(syscall.SIGCONT)
	// The zombie wakes: its pause ends and its next step's start is refused.
	testprom.Eventually(t, 30*time.Second, func() error {
		out := zombie.output()
		if !strings.Contains(out, "the step is not run: its start could not be recorded") {
			return fmt.Errorf("the resumed replica has not tried its next step yet:\n%s", tail(out, 8))
		}
		if !strings.Contains(out, "lease expired") {
			return fmt.Errorf("the resumed replica has not found its lease lost:\n%s", tail(out, 8))
		}
		return nil
	})
	runs, _ := c.st.Runs(ctx, store.RunFilter{Assert: share})
	steps, _ := c.st.Steps(ctx, runs[0].ID)
	if n := c.target.callsOf("again", "00", start, time.Now()); n != 0 {
		t.Errorf("the second step ran %d times after the takeover", n)
	}
	if n := c.target.callsOf("call", "00", start, time.Now()); n != 1 {
		t.Errorf("the first step ran %d times", n)
	}
	if len(runs) != 1 || runs[0].Status != assertd.RunInterrupted {
		t.Errorf("the resumed replica changed the run: %+v", runs)
	}
	for _, s := range steps {
		if s.Name == "again" || s.Name == "verify" {
			t.Errorf("a step was recorded after the takeover: %+v", s)
		}
	}
	if n := triggersOf(c, share, start); n != 1 {
		t.Errorf("%d PagerDuty triggers, want 1", n)
	}
	// The heir's cluster page and metrics show the takeover (the share may
	// have moved back since: the resumed replica registered again, under a
	// new ID, and rendezvous hashing may give it the share).
	code, body := heir.get("/api/v1/cluster")
	var cv struct {
		Enabled      bool     `json:"enabled"`
		Owned        []string `json:"owned"`
		LastTakeover struct {
			Share string `json:"share"`
			Epoch int64  `json:"epoch"`
		} `json:"last_takeover"`
		Shares []struct {
			Name  string `json:"name"`
			Epoch int64  `json:"epoch"`
		} `json:"shares"`
	}
	if err := json.Unmarshal([]byte(body), &cv); err != nil || code != 200 || !cv.Enabled || !slices.ContainsFunc(cv.Shares, func(x struct {
		Name  string `json:"name"`
		Epoch int64  `json:"epoch"`
	}) bool {
		return x.Name == share && x.Epoch >= newEpoch
	}) ||
		cv.LastTakeover.Share != share || cv.LastTakeover.Epoch != newEpoch {
		t.Errorf("the heir's /api/v1/cluster: %d %v\n%s", code, err, body)
	}
	if code, page := heir.get("/cluster"); code != 200 || !strings.Contains(page, share) || !strings.Contains(page, "Last takeover") {
		t.Errorf("the heir's cluster page: %d\n%s", code, tail(page, 20))
	}
	if _, m := heir.get("/metrics"); !strings.Contains(m, "assertd_cluster_takeovers_total 1") || !strings.Contains(m, "assertd_cluster_lease_held 1") {
		t.Errorf("the heir's cluster metrics:\n%s", grepLines(m, "assertd_cluster_"))
	}
	if code, _ := heir.get("/readyz"); code != 200 {
		t.Errorf("the heir is not ready: %d", code)
	}
	t.Logf("takeover of a stopped owner: %s (lease 2s, renew 500ms); epoch %d -> %d", took.Round(time.Millisecond), epoch, newEpoch)
}

// triggersOf counts PagerDuty triggers of an assert's instances since from.
func triggersOf(c *haCluster, assert string, from time.Time) int {
	n := 0
	for _, e := range c.pd.Events() {
		if e.Action == "trigger" && strings.HasPrefix(e.DedupKey, "assertd/"+assert+"/") && !e.At.Before(from) {
			n++
		}
	}
	return n
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// A replica stopped cleanly (SIGTERM) gives its shares up as it leaves: the
// other takes them at its next round, well before the stopped one's lease
// (10s) would have run out.
func TestCleanStopHandsSharesOver(t *testing.T) {
	t.Parallel()
	ids := []string{"00", "01", "02", "03"}
	c := newHACluster(t, haOptions{replicas: 2, lease: "10s", renew: "500ms", every: "500ms", ids: ids, rules: chaosRules(ids, "1h", "1s")})
	for _, r := range c.replicas {
		r.start()
	}
	// Which replica owns which share follows from the replicas' random IDs
	// (rendezvous hashing): both may own some, or one all four. Wait until
	// both are registered and the owners have not changed for 1.5s (three
	// rounds), then stop the owner of the first share.
	var owner *replica
	share := "chaos-" + ids[0]
	var last string
	var stableSince time.Time
	testprom.Eventually(t, 20*time.Second, func() error {
		reps, err := c.st.(store.Cluster).Replicas(context.Background(), time.Time{})
		if err != nil {
			return err
		}
		live := 0
		for _, r := range reps {
			if r.Live(time.Now()) {
				live++
			}
		}
		if live != 2 {
			return fmt.Errorf("%d live replicas registered, want 2", live)
		}
		var now strings.Builder
		for _, id := range ids {
			o, _ := c.owner("chaos-" + id)
			if o == nil {
				return fmt.Errorf("chaos-%s has no owner", id)
			}
			fmt.Fprintf(&now, "%s=%s ", id, o.name)
		}
		if now.String() != last {
			last, stableSince = now.String(), time.Now()
		}
		if time.Since(stableSince) < 1500*time.Millisecond {
			return fmt.Errorf("the owners are still moving: %s", last)
		}
		owner, _ = c.owner(share)
		return nil
	})
	owner.signal(syscall.SIGTERM)
	stopped := time.Now()
	if err := owner.p.Wait(); err != nil {
		t.Fatalf("the stopped replica exited with %v:\n%s", err, tail(owner.output(), 10))
	}
	testprom.Eventually(t, 8*time.Second, func() error {
		if o, _ := c.owner(share); o == nil || o == owner {
			return fmt.Errorf("%s not taken over yet", share)
		}
		return nil
	})
	if took := time.Since(stopped); took >= 10*time.Second {
		t.Fatalf("taken over after %s: the lease ran out, the replica did not leave", took)
	}
}
